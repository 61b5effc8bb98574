package identity

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// allowAll is RBAC as a tenant cluster-admin sees it: everything allowed.
type allowAll struct{ asked int }

func (a *allowAll) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	a.asked++
	return authorizer.DecisionAllow, "", nil
}

func (a *allowAll) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

func (a *allowAll) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

func TestAuthorizerDeniesImpersonatingReservedIdentities(t *testing.T) {
	t.Parallel()
	admin := &user.DefaultInfo{Name: "knest-admin", Groups: []string{user.SystemPrivilegedGroup}}
	attrs := func(verb, group, resource, name string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: admin, Verb: verb, APIGroup: group, Resource: resource, Name: name, ResourceRequest: true}
	}
	tests := []struct {
		name       string
		attrs      authorizer.AttributesRecord
		wantReason string // empty: the delegate decides
	}{
		{name: "legacy impersonation of knestd's user is denied",
			attrs: attrs("impersonate", "", "users", "system:knest:knestd"), wantReason: `impersonating user "system:knest:knestd" is not allowed`},
		{name: "constrained impersonation of knestd's user is denied",
			attrs: attrs("impersonate:user-info", "authentication.k8s.io", "users", "system:knest:knestd"), wantReason: "reserved for knestd"},
		{name: "any user under the reserved prefix is denied",
			attrs: attrs("impersonate", "", "users", "system:knest:syncer"), wantReason: "reserved"},
		{name: "the API server's loopback user is denied",
			attrs: attrs("impersonate", "", "users", "system:apiserver"), wantReason: `"system:apiserver"`},
		{name: "a reserved group is denied",
			attrs: attrs("impersonate", "", "groups", "system:knest:anything"), wantReason: `impersonating group "system:knest:anything"`},
		{name: "a reserved group through constrained impersonation is denied",
			attrs: attrs("impersonate:user-info", "authentication.k8s.io", "groups", "system:knest:anything"), wantReason: "reserved for knestd"},
		{name: "every group at once is denied, so each is checked",
			attrs: attrs("impersonate:user-info", "authentication.k8s.io", "groups", "*"), wantReason: "each group is checked on its own"},
		{name: "an ordinary user is the delegate's business",
			attrs: attrs("impersonate", "", "users", "bob")},
		{name: "system:masters is the delegate's business",
			attrs: attrs("impersonate", "", "groups", "system:masters")},
		{name: "a service account is the delegate's business",
			attrs: attrs("impersonate", "", "serviceaccounts", "default")},
		{name: "a UID is not an identity admission looks at",
			attrs: attrs("impersonate", "authentication.k8s.io", "uids", "system:knest:knestd")},
		{name: "the request made while impersonating is the delegate's business",
			attrs: attrs("impersonate-on:user-info:create", "", "pods", "")},
		{name: "other verbs on a resource named users are the delegate's business",
			attrs: attrs("get", "", "users", "system:knest:knestd")},
		{name: "a resource named users in another group is the delegate's business",
			attrs: attrs("impersonate", "example.com", "users", "system:knest:knestd")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			delegate := &allowAll{}
			a := NewAuthorizer(delegate)
			decision, reason, err := a.Authorize(t.Context(), tc.attrs)
			cad := a.ConditionsAwareAuthorize(t.Context(), tc.attrs)
			if err != nil || cad.Error() != nil {
				t.Fatalf("errors: %v, %v", err, cad.Error())
			}
			if tc.wantReason == "" {
				if decision != authorizer.DecisionAllow || !cad.IsAllow() || delegate.asked != 2 {
					t.Errorf("decision %v (conditions-aware allow: %v), delegate asked %d times; want the delegate's allow", decision, cad.IsAllow(), delegate.asked)
				}
				return
			}
			if decision != authorizer.DecisionDeny || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("decision %v reason %q, want deny with %q", decision, reason, tc.wantReason)
			}
			if !cad.IsDeny() || !strings.Contains(cad.Reason(), tc.wantReason) {
				t.Errorf("conditions-aware decision %v, want deny with %q", cad, tc.wantReason)
			}
			if delegate.asked != 0 {
				t.Errorf("the delegate was asked %d times; a reserved identity must be denied before RBAC", delegate.asked)
			}
		})
	}
}
