package pki

import "testing"

func TestReservedNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		in                  string
		wantUser, wantGroup bool
	}{
		{name: "knestd's own user", in: InternalUser, wantUser: true, wantGroup: true},
		{name: "any name under knest's prefix", in: "system:knest:anything", wantUser: true, wantGroup: true},
		{name: "the bare prefix", in: "system:knest:", wantUser: true, wantGroup: true},
		{name: "the API server's loopback user is a reserved user", in: APIServerUser, wantUser: true},
		{name: "the tenant's admin", in: "knest-admin"},
		{name: "system:masters stays the tenant's", in: "system:masters"},
		{name: "a name that only starts alike", in: "system:knestd"},
		{name: "another case is another name", in: "System:knest:knestd"},
		{name: "a service account", in: "system:serviceaccount:default:knest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ReservedUser(tc.in); got != tc.wantUser {
				t.Errorf("ReservedUser(%q) = %v, want %v", tc.in, got, tc.wantUser)
			}
			if got := ReservedGroup(tc.in); got != tc.wantGroup {
				t.Errorf("ReservedGroup(%q) = %v, want %v", tc.in, got, tc.wantGroup)
			}
		})
	}
}
