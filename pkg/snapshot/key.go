package snapshot

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/knest-dev/knest/internal/atomicfile"
)

// KeySize is the size of a snapshot key.
const KeySize = 32

// LoadKey reads a snapshot key file: the base64 encoding of KeySize bytes.
func LoadKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the snapshot key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("snapshot key file %s is corrupt: not base64", path)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("snapshot key file %s is corrupt: key is %d bytes, want %d", path, len(key), KeySize)
	}
	return key, nil
}

// EnsureKey loads the key file, creating it (mode 0600) with a new random
// key if it does not exist.
func EnsureKey(path string) ([]byte, error) {
	_, err := os.Stat(path)
	if err == nil {
		return LoadKey(path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to read the snapshot key: %w", err)
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

// keyID names a key without revealing it, so that a file sealed under
// another key is refused as such rather than as corrupt.
func keyID(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("knest snapshot key id"))
	return m.Sum(nil)[:keyIDSize]
}
