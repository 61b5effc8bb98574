package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
	"k8s.io/klog/v2"
	schedulingapiv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	kubecontrolplane "k8s.io/kubernetes/pkg/controlplane"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"
	schedulingrest "k8s.io/kubernetes/pkg/registry/scheduling/rest"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
	"k8s.io/utils/ptr"
)

// The post-start hooks knestd installs in place of upstream's
// rbac/bootstrap-roles and scheduling/bootstrap-system-priority-classes.
const (
	BootstrapRolesHook           = "knest/bootstrap-roles"
	BootstrapPriorityClassesHook = "knest/bootstrap-system-priority-classes"
	// KubernetesServiceHook creates the default/kubernetes Service before
	// /readyz passes (see addKubernetesServiceHook).
	KubernetesServiceHook = "knest/kubernetes-service"
)

const (
	// bootstrapInterval and bootstrapTimeout: a failed attempt is retried
	// soon; after the timeout the hook fails, and the API server with it,
	// as upstream's does (a control plane without its default roles
	// authorizes nothing).
	bootstrapInterval = 200 * time.Millisecond
	bootstrapTimeout  = 30 * time.Second
	// bootstrapWorkers bound the writes in flight on a cold start.
	bootstrapWorkers = 8
)

// replaceBootstrapHooks disables upstream's two bootstrap hooks on the
// kube-apiserver's generic configuration and installs knestd's.
//
// Upstream's hooks poll with wait.Poll(1s, ...), which sleeps a full second
// before its first attempt, and the RBAC one then reads every default
// object with its own GET: about 1.1-1.3 s of every start and restart
// before /readyz (and the /healthz the controller-manager waits for)
// passes. knestd's hooks run upstream's reconciliation
// (k8s.io/component-helpers/auth/rbac/reconciliation, on the policy
// bootstrappolicy defines, with the same priming of renamed roles and split
// bindings) at once, against one LIST per kind, and write only what
// differs, several writes at a time. A restart whose objects already match
// writes nothing; a default role that was changed or deleted is repaired at
// the next start, as upstream repairs it.
func replaceBootstrapHooks(c *genericapiserver.Config, logger klog.Logger) error {
	c.DisabledPostStartHooks.Insert(rbacrest.PostStartHookName, schedulingrest.PostStartHookName)
	hooks := map[string]func(context.Context, kubernetes.Interface) error{
		BootstrapRolesHook: func(ctx context.Context, client kubernetes.Interface) error {
			return EnsureRBACPolicy(ctx, client, DefaultRBACPolicy())
		},
		BootstrapPriorityClassesHook: EnsureSystemPriorityClasses,
	}
	for name, ensure := range hooks {
		logger := logger.WithValues("hook", name)
		if err := c.AddPostStartHook(name, func(hc genericapiserver.PostStartHookContext) error {
			return runBootstrapHook(hc, logger, ensure)
		}); err != nil {
			return fmt.Errorf("apiserver: %w", err)
		}
	}
	return nil
}

// addKubernetesServiceHook makes the "kubernetes" Service part of being
// ready. Upstream's bootstrap-controller creates it only after /readyz
// passes (it polls /readyz every 100 ms first), so a client that waits for
// /readyz, as every tenant's tooling and the host kubelet's probe do, could
// find the control plane ready and the Service missing. A post-start hook
// gates /readyz until it returns; this one creates the Service as upstream
// would (same name, labels, ports, ClusterIP and type) when it does not
// exist, and upstream's controller finds it there and keeps its endpoints.
// An existing Service is left as it is, as upstream leaves it.
func addKubernetesServiceHook(c *kubecontrolplane.Config, logger klog.Logger) error {
	logger = logger.WithValues("hook", KubernetesServiceHook)
	if err := c.ControlPlane.Generic.AddPostStartHook(KubernetesServiceHook, func(hc genericapiserver.PostStartHookContext) error {
		// Read when the hook runs: Complete fills in the defaults (the
		// Service IP, port 443) after the hook is added.
		_, port, err := c.ControlPlane.Generic.SecureServing.HostPort()
		if err != nil {
			return fmt.Errorf("failed to get the listener's port: %w", err)
		}
		svc := kubernetesService(c.Extra.APIServerServiceIP, c.Extra.APIServerServicePort, port, c.Extra.KubernetesServiceNodePort)
		return runBootstrapHook(hc, logger, func(ctx context.Context, client kubernetes.Interface) error {
			return EnsureKubernetesService(ctx, client, svc)
		})
	}); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return nil
}

// kubernetesService is the Service upstream's bootstrap controller
// (pkg/controlplane/controller/kubernetesservice) creates.
func kubernetesService(ip net.IP, servicePort, targetPort, nodePort int) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kubernetes",
			Namespace: metav1.NamespaceDefault,
			Labels:    map[string]string{"provider": "kubernetes", "component": "apiserver"},
		},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{
				Name: "https", Protocol: corev1.ProtocolTCP, Port: int32(servicePort), TargetPort: intstr.FromInt32(int32(targetPort)),
			}},
			ClusterIP:       ip.String(),
			IPFamilyPolicy:  ptr.To(corev1.IPFamilyPolicySingleStack),
			SessionAffinity: corev1.ServiceAffinityNone,
			Type:            corev1.ServiceTypeClusterIP,
		},
	}
	if nodePort > 0 {
		svc.Spec.Ports[0].NodePort = int32(nodePort)
		svc.Spec.Type = corev1.ServiceTypeNodePort
	}
	return svc
}

// EnsureKubernetesService creates svc unless a Service of its name exists.
// Until the default namespace and the Service CIDR exist (their controllers
// start with the server) the create fails, and the hook retries.
func EnsureKubernetesService(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) error {
	services := client.CoreV1().Services(svc.Namespace)
	_, err := services.Get(ctx, svc.Name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to read Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	klog.FromContext(ctx).V(1).Info("Created the kubernetes Service", "clusterIP", svc.Spec.ClusterIP)
	return nil
}

func runBootstrapHook(hc genericapiserver.PostStartHookContext, logger klog.Logger, ensure func(context.Context, kubernetes.Interface) error) error {
	cfg := rest.CopyConfig(hc.LoopbackClientConfig)
	cfg.QPS = -1
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := klog.NewContext(hc.Context, logger)
	begin := time.Now()
	var last error
	err = wait.PollUntilContextTimeout(ctx, bootstrapInterval, bootstrapTimeout, true, func(ctx context.Context) (bool, error) {
		if last = ensure(ctx, client); last != nil {
			logger.Info("Bootstrap objects not yet reconciled, retrying", "err", last)
			return false, nil
		}
		return true, nil
	})
	if err != nil && hc.Context.Err() != nil {
		// The server is stopping (a SIGTERM during start-up): failing the
		// hook would make the API server exit fatally instead of cleanly;
		// the next start reconciles.
		logger.Info("Bootstrap objects not reconciled: the API server is stopping")
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to reconcile the bootstrap objects: %w", errors.Join(err, last))
	}
	logger.V(1).Info("Bootstrap objects reconciled", "took", time.Since(begin))
	return nil
}

// RBACPolicy is the default RBAC policy a tenant API server keeps.
type RBACPolicy struct {
	ClusterRoles        []rbacv1.ClusterRole
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	Roles               map[string][]rbacv1.Role
	RoleBindings        map[string][]rbacv1.RoleBinding
	// ClusterRolesToAggregate maps a role's old name to the aggregated
	// role that replaced it; ClusterRoleBindingsToSplit a binding's old
	// name to the bindings split out of it.
	ClusterRolesToAggregate    map[string]string
	ClusterRoleBindingsToSplit map[string]rbacv1.ClusterRoleBinding
}

// DefaultRBACPolicy is upstream's bootstrap policy, the one the upstream
// hook reconciles.
func DefaultRBACPolicy() RBACPolicy {
	return RBACPolicy{
		ClusterRoles:               append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...),
		ClusterRoleBindings:        append(bootstrappolicy.ClusterRoleBindings(), bootstrappolicy.ControllerRoleBindings()...),
		Roles:                      bootstrappolicy.NamespaceRoles(),
		RoleBindings:               bootstrappolicy.NamespaceRoleBindings(),
		ClusterRolesToAggregate:    bootstrappolicy.ClusterRolesToAggregate(),
		ClusterRoleBindingsToSplit: bootstrappolicy.ClusterRoleBindingsToSplit(),
	}
}

// EnsureRBACPolicy creates or updates the objects of p with upstream's
// reconciliation (missing rules and subjects are added; annotated
// rbac.authorization.kubernetes.io/autoupdate=false objects are left
// alone), reading what is stored with one LIST per kind and namespace.
func EnsureRBACPolicy(ctx context.Context, client kubernetes.Interface, p RBACPolicy) error {
	logger := klog.FromContext(ctx)
	rbac := client.RbacV1()
	clusterRoles, err := listClusterRoles(ctx, client)
	if err != nil {
		return err
	}
	clusterRoleBindings, err := listClusterRoleBindings(ctx, client)
	if err != nil {
		return err
	}
	roles := newListed[reconciliation.RuleOwner](rbacv1.Resource("roles"))
	for ns := range p.Roles {
		list, err := rbac.Roles(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("failed to list Roles in %s: %w", ns, err)
		}
		roles.listedNamespace(ns)
		for i := range list.Items {
			roles.add(ns, list.Items[i].Name, reconciliation.RoleRuleOwner{Role: &list.Items[i]})
		}
	}
	roleBindings := newListed[reconciliation.RoleBinding](rbacv1.Resource("rolebindings"))
	for ns := range p.RoleBindings {
		list, err := rbac.RoleBindings(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("failed to list RoleBindings in %s: %w", ns, err)
		}
		roleBindings.listedNamespace(ns)
		for i := range list.Items {
			roleBindings.add(ns, list.Items[i].Name, reconciliation.RoleBindingAdapter{RoleBinding: &list.Items[i]})
		}
	}

	if err := primeRenamed(ctx, client, p, clusterRoles, clusterRoleBindings); err != nil {
		return err
	}

	liveClusterRoles := reconciliation.ClusterRoleModifier{Client: rbac.ClusterRoles()}
	liveClusterRoleBindings := reconciliation.ClusterRoleBindingClientAdapter{Client: rbac.ClusterRoleBindings()}
	liveRoles := reconciliation.RoleModifier{Client: rbac, NamespaceClient: client.CoreV1().Namespaces()}
	liveRoleBindings := reconciliation.RoleBindingClientAdapter{Client: rbac, NamespaceClient: client.CoreV1().Namespaces()}

	// Roles before the bindings that refer to them, as upstream orders them.
	var roleTasks, bindingTasks []func() error
	for i := range p.ClusterRoles {
		roleTasks = append(roleTasks, reconcileRole(logger, &reconciliation.ReconcileRoleOptions{
			Role:    reconciliation.ClusterRoleRuleOwner{ClusterRole: p.ClusterRoles[i].DeepCopy()},
			Client:  cachedRoles{RuleOwnerModifier: liveClusterRoles, stored: clusterRoles},
			Confirm: true,
		}))
	}
	for ns := range p.Roles {
		for i := range p.Roles[ns] {
			role := p.Roles[ns][i].DeepCopy()
			role.Namespace = ns
			roleTasks = append(roleTasks, reconcileRole(logger, &reconciliation.ReconcileRoleOptions{
				Role:    reconciliation.RoleRuleOwner{Role: role},
				Client:  cachedRoles{RuleOwnerModifier: liveRoles, stored: roles},
				Confirm: true,
			}))
		}
	}
	for i := range p.ClusterRoleBindings {
		bindingTasks = append(bindingTasks, reconcileBinding(logger, &reconciliation.ReconcileRoleBindingOptions{
			RoleBinding: reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: p.ClusterRoleBindings[i].DeepCopy()},
			Client:      cachedBindings{RoleBindingModifier: liveClusterRoleBindings, stored: clusterRoleBindings},
			Confirm:     true,
		}))
	}
	for ns := range p.RoleBindings {
		for i := range p.RoleBindings[ns] {
			binding := p.RoleBindings[ns][i].DeepCopy()
			binding.Namespace = ns
			bindingTasks = append(bindingTasks, reconcileBinding(logger, &reconciliation.ReconcileRoleBindingOptions{
				RoleBinding: reconciliation.RoleBindingAdapter{RoleBinding: binding},
				Client:      cachedBindings{RoleBindingModifier: liveRoleBindings, stored: roleBindings},
				Confirm:     true,
			}))
		}
	}
	return errors.Join(runAll(roleTasks), runAll(bindingTasks))
}

// EnsureSystemPriorityClasses creates the system PriorityClasses that are
// missing. Like upstream, it leaves existing ones alone.
func EnsureSystemPriorityClasses(ctx context.Context, client kubernetes.Interface) error {
	pcs := client.SchedulingV1().PriorityClasses()
	list, err := pcs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list PriorityClasses: %w", err)
	}
	stored := map[string]bool{}
	for _, pc := range list.Items {
		stored[pc.Name] = true
	}
	for _, pc := range schedulingapiv1.SystemPriorityClasses() {
		if stored[pc.Name] {
			continue
		}
		if _, err := pcs.Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create PriorityClass %s: %w", pc.Name, err)
		}
		klog.FromContext(ctx).V(1).Info("Created PriorityClass", "name", pc.Name)
	}
	return nil
}

func listClusterRoles(ctx context.Context, client kubernetes.Interface) (*listed[reconciliation.RuleOwner], error) {
	list, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list ClusterRoles: %w", err)
	}
	l := newListed[reconciliation.RuleOwner](rbacv1.Resource("clusterroles"))
	l.listedNamespace("")
	for i := range list.Items {
		l.add("", list.Items[i].Name, reconciliation.ClusterRoleRuleOwner{ClusterRole: &list.Items[i]})
	}
	return l, nil
}

func listClusterRoleBindings(ctx context.Context, client kubernetes.Interface) (*listed[reconciliation.RoleBinding], error) {
	list, err := client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list ClusterRoleBindings: %w", err)
	}
	l := newListed[reconciliation.RoleBinding](rbacv1.Resource("clusterrolebindings"))
	l.listedNamespace("")
	for i := range list.Items {
		l.add("", list.Items[i].Name, reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &list.Items[i]})
	}
	return l, nil
}

// primeRenamed carries what an administrator added to a role or binding
// that upstream later renamed or split over to the new object, when the new
// one does not exist yet: what upstream's hook does before it reconciles.
func primeRenamed(ctx context.Context, client kubernetes.Interface, p RBACPolicy, clusterRoles *listed[reconciliation.RuleOwner], bindings *listed[reconciliation.RoleBinding]) error {
	for oldName, newName := range p.ClusterRolesToAggregate {
		old, hasOld := clusterRoles.peek("", oldName)
		if _, hasNew := clusterRoles.peek("", newName); hasNew || !hasOld {
			continue
		}
		role := old.(reconciliation.ClusterRoleRuleOwner).ClusterRole.DeepCopy()
		if role.AggregationRule != nil {
			// Already aggregated: no rules of its own to carry over.
			continue
		}
		role.ObjectMeta = metav1.ObjectMeta{Name: newName, Labels: role.Labels, Annotations: role.Annotations}
		created, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create ClusterRole %s from %s: %w", newName, oldName, err)
		}
		if err == nil {
			clusterRoles.add("", newName, reconciliation.ClusterRoleRuleOwner{ClusterRole: created})
		}
	}
	for oldName, template := range p.ClusterRoleBindingsToSplit {
		old, hasOld := bindings.peek("", oldName)
		if _, hasNew := bindings.peek("", template.Name); hasNew || !hasOld {
			continue
		}
		from := old.(reconciliation.ClusterRoleBindingAdapter).ClusterRoleBinding
		binding := template.DeepCopy()
		binding.Subjects, binding.Labels, binding.Annotations = from.Subjects, from.Labels, from.Annotations
		created, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create ClusterRoleBinding %s from %s: %w", template.Name, oldName, err)
		}
		if err == nil {
			bindings.add("", template.Name, reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: created})
		}
	}
	return nil
}

func reconcileRole(logger klog.Logger, o *reconciliation.ReconcileRoleOptions) func() error {
	return func() error {
		result, err := o.Run()
		if err != nil {
			return fmt.Errorf("failed to reconcile %s: %w", describe(o.Role.GetNamespace(), o.Role.GetName(), o.Role.GetObject()), err)
		}
		switch {
		case result.Protected && result.Operation != reconciliation.ReconcileNone:
			logger.Info("Default role not reconciled: it opts out of reconciliation", "role", describe(o.Role.GetNamespace(), o.Role.GetName(), o.Role.GetObject()), "missingRules", result.MissingRules)
		case result.Operation != reconciliation.ReconcileNone:
			logger.V(1).Info("Default role reconciled", "role", describe(o.Role.GetNamespace(), o.Role.GetName(), o.Role.GetObject()), "operation", result.Operation)
		}
		return nil
	}
}

func reconcileBinding(logger klog.Logger, o *reconciliation.ReconcileRoleBindingOptions) func() error {
	return func() error {
		b := o.RoleBinding
		result, err := o.Run()
		if err != nil {
			return fmt.Errorf("failed to reconcile %s: %w", describe(b.GetNamespace(), b.GetName(), b.GetObject()), err)
		}
		switch {
		case result.Protected && result.Operation != reconciliation.ReconcileNone:
			logger.Info("Default binding not reconciled: it opts out of reconciliation", "binding", describe(b.GetNamespace(), b.GetName(), b.GetObject()), "missingSubjects", result.MissingSubjects)
		case result.Operation != reconciliation.ReconcileNone:
			logger.V(1).Info("Default binding reconciled", "binding", describe(b.GetNamespace(), b.GetName(), b.GetObject()), "operation", result.Operation)
		}
		return nil
	}
}

// describe names a reconciled object for logs and errors.
func describe(namespace, name string, obj runtime.Object) string {
	kind := "object"
	switch obj.(type) {
	case *rbacv1.ClusterRole:
		kind = "ClusterRole"
	case *rbacv1.ClusterRoleBinding:
		kind = "ClusterRoleBinding"
	case *rbacv1.Role:
		kind = "Role"
	case *rbacv1.RoleBinding:
		kind = "RoleBinding"
	}
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// runAll runs the tasks, bootstrapWorkers at a time, and joins their errors:
// one failure does not stop the others, as upstream tries as many as it can.
func runAll(tasks []func() error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, bootstrapWorkers)
	for _, task := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := task(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// listed holds the objects of one LIST and serves each name's stored state
// (the object, or NotFound for a listed namespace) once; any later Get of
// that name, the retry after a conflict or an AlreadyExists, reads the API
// server again.
type listed[T any] struct {
	resource   schema.GroupResource
	mu         sync.Mutex
	namespaces map[string]bool
	objects    map[string]T
	served     map[string]bool
}

func newListed[T any](resource schema.GroupResource) *listed[T] {
	return &listed[T]{resource: resource, namespaces: map[string]bool{}, objects: map[string]T{}, served: map[string]bool{}}
}

func (l *listed[T]) listedNamespace(ns string) { l.namespaces[ns] = true }

func (l *listed[T]) add(ns, name string, obj T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.objects[ns+"/"+name] = obj
}

func (l *listed[T]) peek(ns, name string) (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	obj, ok := l.objects[ns+"/"+name]
	return obj, ok
}

// get returns the listed state of ns/name the first time, and live() after.
func (l *listed[T]) get(ns, name string, live func() (T, error)) (T, error) {
	key := ns + "/" + name
	l.mu.Lock()
	first := l.namespaces[ns] && !l.served[key]
	l.served[key] = true
	obj, ok := l.objects[key]
	l.mu.Unlock()
	if !first {
		return live()
	}
	if !ok {
		var zero T
		return zero, apierrors.NewNotFound(l.resource, name)
	}
	return obj, nil
}

// cachedRoles reads roles from a LIST, writes through the live modifier.
type cachedRoles struct {
	reconciliation.RuleOwnerModifier
	stored *listed[reconciliation.RuleOwner]
}

func (c cachedRoles) Get(namespace, name string) (reconciliation.RuleOwner, error) {
	return c.stored.get(namespace, name, func() (reconciliation.RuleOwner, error) {
		return c.RuleOwnerModifier.Get(namespace, name)
	})
}

// cachedBindings reads bindings from a LIST, writes through the live
// modifier.
type cachedBindings struct {
	reconciliation.RoleBindingModifier
	stored *listed[reconciliation.RoleBinding]
}

func (c cachedBindings) Get(namespace, name string) (reconciliation.RoleBinding, error) {
	return c.stored.get(namespace, name, func() (reconciliation.RoleBinding, error) {
		return c.RoleBindingModifier.Get(namespace, name)
	})
}
