package encryption

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureKeyGeneratesOnceAndReuses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "encryption.key")
	first, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	second, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("a second EnsureKey returned a different key")
	}
	if len(first) != KeySize {
		t.Errorf("key is %d bytes, want %d", len(first), KeySize)
	}
}

func TestLoadKeyRefusesCorruptFilesAndKeepsThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{name: "not base64", content: "%%%not base64%%%\n", wantErr: "corrupt: not base64"},
		{name: "too short", content: base64.StdEncoding.EncodeToString([]byte("short")), wantErr: "key is 5 bytes, want 32"},
		{name: "empty", content: "", wantErr: "key is 0 bytes, want 32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "encryption.key")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := EnsureKey(path)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tc.content {
				t.Errorf("the corrupt key file was rewritten")
			}
		})
	}
}

func TestConfigUsesSecretboxWithoutPlainTextFallback(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	got := string(Config(key))
	for _, want := range []string{"kind: EncryptionConfiguration", "- secrets", "secretbox:", "name: " + ProviderName, base64.StdEncoding.EncodeToString(key)} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "identity") {
		t.Errorf("config must not fall back to the identity (plain text) provider:\n%s", got)
	}
}
