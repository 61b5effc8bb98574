package encryption

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/knest-dev/knest/internal/keyfile"
)

// KeySize is the key length secretbox (XSalsa20-Poly1305) takes.
const KeySize = 32

// ProviderName names the key in the EncryptionConfiguration; it is stored
// with every encrypted value, so it must not change while data exists.
const ProviderName = "knest-key-1"

// LoadKey reads a key file. The file must hold exactly one base64-encoded
// 32-byte key, optionally followed by a newline.
func LoadKey(path string) ([]byte, error) {
	return keyfile.Load(path, "encryption key", KeySize)
}

// EnsureKey loads the key at path, generating and writing a new one (mode
// 0600) if the file does not exist yet.
func EnsureKey(path string) ([]byte, error) {
	return keyfile.Ensure(path, "encryption key", KeySize)
}

// Resources are encrypted at rest. Secrets are the point; the others can hold
// credentials too (bootstrap data in ConfigMaps is out of scope: ConfigMaps
// are not meant for secrets, and encrypting them costs every read).
var Resources = []string{"secrets"}

// Config renders an EncryptionConfiguration that encrypts Resources with key
// through secretbox. There is no identity provider to fall back to: every
// value was written encrypted, so a plain-text value would be a sign of
// tampering and is refused on read.
func Config(key []byte) []byte {
	var b bytes.Buffer
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n")
	for _, r := range Resources {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	fmt.Fprintf(&b, "  providers:\n  - secretbox:\n      keys:\n      - name: %s\n        secret: %s\n",
		ProviderName, base64.StdEncoding.EncodeToString(key))
	return b.Bytes()
}
