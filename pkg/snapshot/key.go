package snapshot

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/knest-dev/knest/internal/keyfile"
)

// KeySize is the size of a snapshot key.
const KeySize = 32

// LoadKey reads a snapshot key file: the base64 encoding of KeySize bytes.
func LoadKey(path string) ([]byte, error) {
	return keyfile.Load(path, "snapshot key", KeySize)
}

// EnsureKey loads the key file, creating it (mode 0600) with a new random
// key if it does not exist.
func EnsureKey(path string) ([]byte, error) {
	return keyfile.Ensure(path, "snapshot key", KeySize)
}

// keyID names a key without revealing it, so that a file sealed under
// another key is refused as such rather than as corrupt.
func keyID(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("knest snapshot key id"))
	return m.Sum(nil)[:keyIDSize]
}
