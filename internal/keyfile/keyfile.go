// Package keyfile reads and creates the files knestd keeps its symmetric
// keys in: the base64 encoding of a fixed number of random bytes, mode 0600.
package keyfile

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

// Load reads the key file at path, which must hold the base64 encoding of
// exactly size bytes (and optionally a newline). what names the key in
// errors ("snapshot key").
func Load(path, what string, size int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the %s: %w", what, err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("%s file %s is corrupt: not base64", what, path)
	}
	if len(key) != size {
		return nil, fmt.Errorf("%s file %s is corrupt: key is %d bytes, want %d", what, path, len(key), size)
	}
	return key, nil
}

// Ensure loads the key file at path, first creating it (mode 0600, written
// atomically) with size new random bytes if it does not exist.
func Ensure(path, what string, size int) ([]byte, error) {
	_, err := os.Stat(path)
	if err == nil {
		return Load(path, what, size)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to read the %s: %w", what, err)
	}
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
