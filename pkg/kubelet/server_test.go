package kubelet

import "testing"

func TestConfigRequiresEverything(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); err == nil {
		t.Error("an empty Config is valid")
	}
}
