package identity

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/knest-dev/knest/pkg/pki"
)

// NewAuthorizer returns delegate with impersonation of reserved users and
// groups denied before delegate is asked.
func NewAuthorizer(delegate authorizer.Authorizer) authorizer.Authorizer {
	return &impersonationGuard{delegate: delegate}
}

type impersonationGuard struct {
	delegate authorizer.Authorizer
}

// Authorize denies impersonating a reserved identity, whatever delegate
// would say.
func (g *impersonationGuard) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if reason := refusal(a); reason != "" {
		return authorizer.DecisionDeny, reason, nil
	}
	return g.delegate.Authorize(ctx, a)
}

// ConditionsAwareAuthorize denies impersonating a reserved identity
// unconditionally, whatever delegate would say.
func (g *impersonationGuard) ConditionsAwareAuthorize(ctx context.Context, a authorizer.Attributes) authorizer.ConditionsAwareDecision {
	if reason := refusal(a); reason != "" {
		return authorizer.ConditionsAwareDecisionDeny(reason, nil)
	}
	return g.delegate.ConditionsAwareAuthorize(ctx, a)
}

// EvaluateConditions is delegate's: every conditional decision came from it.
func (g *impersonationGuard) EvaluateConditions(ctx context.Context, d authorizer.ConditionsAwareDecision, data authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return g.delegate.EvaluateConditions(ctx, d, data)
}

// refusal returns why a is refused, or "" when it is none of this
// package's business. The impersonation filters ask for verb
// "impersonate" (legacy, users and groups in the core group) or
// "impersonate:<mode>" (constrained impersonation, in
// authentication.k8s.io); "impersonate-on:<mode>:<verb>" is about the
// request made, not the identity taken, and is left to delegate.
func refusal(a authorizer.Attributes) string {
	if !a.IsResourceRequest() {
		return ""
	}
	if verb := a.GetVerb(); verb != "impersonate" && !strings.HasPrefix(verb, "impersonate:") {
		return ""
	}
	if g := a.GetAPIGroup(); g != "" && g != authenticationv1.GroupName {
		return ""
	}
	name := a.GetName()
	switch a.GetResource() {
	case "users":
		if pki.ReservedUser(name) {
			return fmt.Sprintf("impersonating user %q is not allowed: the identity is reserved for knestd and the API server", name)
		}
	case "groups":
		if pki.ReservedGroup(name) {
			return fmt.Sprintf("impersonating group %q is not allowed: the identity is reserved for knestd", name)
		}
		if name == "*" {
			// Constrained impersonation asks once for "*" before asking
			// for each of many groups; denied, it asks for each, and
			// reserved ones are refused above.
			return "impersonating every group at once is not allowed: groups reserved for knestd are excluded, so each group is checked on its own"
		}
	}
	return ""
}
