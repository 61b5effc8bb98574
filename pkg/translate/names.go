package translate

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

const (
	// Separator joins name, namespace and tenant in host names.
	Separator = "-x-"
	// hashMarker precedes the hash in hashed names; with the final
	// separator it makes at least three separators, which a plain name
	// never has.
	hashMarker = "-x-x-"
	// hashLength is the number of hash characters (base32, 5 bits each:
	// 100 bits).
	hashLength = 20
	// minPrefix is the shortest readable prefix a hashed name keeps.
	minPrefix = 1
)

// Name limits of the kinds the syncer handles.
const (
	// MaxSubdomainLength applies to most kinds (ConfigMaps, Secrets, Pods).
	MaxSubdomainLength = 253
	// MaxLabelLength applies to Services (DNS-1035 labels) and to names
	// used as hostnames.
	MaxLabelLength = 63
)

var hashEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// clean reports whether a part can stand between separators without
// creating or blurring one.
func clean(part string) bool {
	return part != "" && !strings.Contains("-"+part+"-", Separator)
}

// HostName returns the host name of tenant object name in tenant namespace
// namespace, for a kind whose names may be at most maxLength long. For
// cluster-scoped tenant objects pass an empty namespace.
func HostName(tenant, namespace, name string, maxLength int) string {
	if namespace == "" {
		namespace = "cluster"
	}
	if clean(name) && clean(namespace) && clean(tenant) {
		plain := name + Separator + namespace + Separator + tenant
		if len(plain) <= maxLength {
			return plain
		}
	}
	return hashedName(tenant, namespace, name, maxLength)
}

func hashedName(tenant, namespace, name string, maxLength int) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + namespace + "\x00" + name))
	hash := hashEncoding.EncodeToString(sum[:])[:hashLength]
	suffix := hashMarker + hash + Separator + tenant
	room := maxLength - len(suffix)
	if room < minPrefix {
		// A tenant name too long for this kind: keep the hash, which alone
		// is unique, and a one-letter prefix so the name starts with a
		// letter (Services need that).
		return ("h" + hashMarker + hash)[:min(maxLength, len(hashMarker)+1+hashLength)]
	}
	prefix := name
	if len(prefix) > room {
		prefix = prefix[:room]
	}
	// A DNS name part must end with an alphanumeric character.
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		prefix = "h"
	}
	return prefix + suffix
}
