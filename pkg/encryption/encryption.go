package encryption

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/knest-dev/knest/internal/atomicfile"
)

// KeySize is the key length secretbox (XSalsa20-Poly1305) takes.
const KeySize = 32

// ProviderName names the key in the EncryptionConfiguration; it is stored
// with every encrypted value, so it must not change while data exists.
const ProviderName = "knest-key-1"

// LoadKey reads a key file. The file must hold exactly one base64-encoded
// 32-byte key, optionally followed by a newline.
func LoadKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read encryption key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s is corrupt: not base64", path)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key file %s is corrupt: key is %d bytes, want %d", path, len(key), KeySize)
	}
	return key, nil
}

// EnsureKey loads the key at path, generating and writing a new one (mode
// 0600) if the file does not exist yet.
func EnsureKey(path string) ([]byte, error) {
	_, err := os.Stat(path)
	if err == nil {
		return LoadKey(path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to read encryption key file: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
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
