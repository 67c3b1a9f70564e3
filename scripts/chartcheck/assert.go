package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checker collects failed checks.
type checker struct{ failures []string }

// check records a failure unless ok.
func (c *checker) check(ok bool, format string, args ...any) {
	if !ok {
		c.failures = append(c.failures, fmt.Sprintf(format, args...))
	}
}

// rendered is what most checks look at, found once.
type rendered struct {
	docs      []obj
	dep       obj    // the one Deployment
	pod       obj    // its pod spec
	sidekey   obj    // the sidekey container
	cfg       obj    // the parsed sidekey.yaml
	cfgSource string // sidekey.yaml as rendered
}

// assertScenario runs the checks every render must pass, then the
// scenario's own. An unknown scenario gets the common checks only.
func assertScenario(scenario string, docs []obj) []string {
	c := &checker{}
	r, ok := find(c, docs)
	if !ok {
		return c.failures
	}
	checkSecurity(c, r)
	checkSecretsStayInSecrets(c, r)
	checkSecretFiles(c, r)
	checkLocalCA(c, r)
	if scenario == "sidecar" {
		checkSidecar(c, r)
		return c.failures
	}
	checkChart(c, r)
	checkScenario(c, r, scenario)
	return c.failures
}

// find locates the Deployment, the sidekey container and its config.
func find(c *checker, docs []obj) (*rendered, bool) {
	deps := kind(docs, "Deployment")
	if len(deps) != 1 {
		c.check(false, "want 1 Deployment, found %d", len(deps))
		return nil, false
	}
	r := &rendered{docs: docs, dep: deps[0]}
	r.pod, _ = get(r.dep, "spec", "template", "spec").(obj)
	r.sidekey = named(list(r.pod, "containers"), "sidekey")
	if r.sidekey == nil {
		r.sidekey = named(list(r.pod, "initContainers"), "sidekey")
	}
	if r.sidekey == nil {
		c.check(false, "no container named sidekey")
		return nil, false
	}
	src, err := sidekeyYAML(docs)
	if err != nil {
		c.check(false, "%v", err)
		return nil, false
	}
	r.cfgSource = src
	if err := yaml.Unmarshal([]byte(src), &r.cfg); err != nil {
		c.check(false, "sidekey.yaml does not parse: %v", err)
		return nil, false
	}
	c.check(slices.Equal(list(r.sidekey, "args"), []any{"--config", "/etc/sidekey/sidekey.yaml"}),
		"sidekey args = %v, want [--config /etc/sidekey/sidekey.yaml]", list(r.sidekey, "args"))
	cm := str(r.volumeAt("/etc/sidekey"), "configMap", "name")
	c.check(cm != "", "no ConfigMap is mounted at /etc/sidekey")
	return r, true
}

// volumeAt returns the pod volume the sidekey container mounts at path.
func (r *rendered) volumeAt(path string) obj {
	for _, m := range list(r.sidekey, "volumeMounts") {
		if str(m, "mountPath") == path {
			return named(list(r.pod, "volumes"), str(m, "name"))
		}
	}
	return nil
}

// checkSecurity: non-root 65532, read-only root, no privilege escalation,
// no capabilities, the runtime's seccomp profile.
func checkSecurity(c *checker, r *rendered) {
	sc, _ := r.sidekey["securityContext"].(obj)
	psc, _ := r.pod["securityContext"].(obj)
	either := func(k string) any {
		if v, ok := sc[k]; ok {
			return v
		}
		return psc[k]
	}
	c.check(either("runAsNonRoot") == true, "securityContext.runAsNonRoot is not true")
	c.check(fmt.Sprint(either("runAsUser")) == "65532", "securityContext.runAsUser = %v, want 65532", either("runAsUser"))
	c.check(sc["readOnlyRootFilesystem"] == true, "securityContext.readOnlyRootFilesystem is not true")
	c.check(sc["allowPrivilegeEscalation"] == false, "securityContext.allowPrivilegeEscalation is not false")
	c.check(slices.Contains(list(sc, "capabilities", "drop"), "ALL"), "securityContext.capabilities.drop lacks ALL")
	c.check(str(either("seccompProfile"), "type") == "RuntimeDefault", "seccompProfile.type is not RuntimeDefault")
	c.check(r.pod["automountServiceAccountToken"] == false, "pod automountServiceAccountToken is not false")
	for _, e := range list(r.sidekey, "env") {
		c.check(get(e, "value") == nil, "sidekey env %s has a plain value; secrets reach sidekey as files", str(e, "name"))
	}
}

// checkSecretsStayInSecrets: no Secret value, and no ci "ci-secret-" value,
// appears in any object but a Secret.
func checkSecretsStayInSecrets(c *checker, r *rendered) {
	values := secretValues(r.docs)
	for _, d := range r.docs {
		if d["kind"] == "Secret" {
			continue
		}
		text, _ := yaml.Marshal(d)
		name := fmt.Sprintf("%s %s", d["kind"], str(d, "metadata", "name"))
		c.check(!strings.Contains(string(text), "ci-secret-"), "%s holds a ci secret value", name)
		for k, v := range values {
			c.check(len(v) < 8 || !strings.Contains(string(text), v), "%s holds the value of secret key %s", name, k)
		}
	}
}

// checkSecretFiles: every *_file path is in the mounted secret volume, and
// a Secret rendered here holds every key named.
func checkSecretFiles(c *checker, r *rendered) {
	files := map[string]bool{}
	collectFiles(map[string]any(r.cfg), files)
	if len(files) == 0 {
		return
	}
	secretName := str(r.volumeAt(SecretDir), "secret", "secretName")
	c.check(secretName != "", "*_file keys are set but no Secret is mounted at %s", SecretDir)
	var data map[string]string
	for _, s := range kind(r.docs, "Secret") {
		if str(s, "metadata", "name") == secretName {
			data = secretValues([]obj{s})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		if strings.HasPrefix(f, TLSDir+"/") || strings.HasPrefix(f, ClientCADir+"/") || isLocalCAFile(f) {
			continue // checkTLS, checkClientCA, checkLocalCA: their own Secrets
		}
		key, ok := strings.CutPrefix(f, SecretDir+"/")
		c.check(ok, "%s is outside %s", f, SecretDir)
		if ok && data != nil {
			_, has := data[key]
			c.check(has, "Secret %s has no key %s (named by the config)", secretName, key)
		}
	}
}

// checkChart: what every render of the chart must hold.
func checkChart(c *checker, r *rendered) {
	c.check(str(r.cfg, "listen") == "0.0.0.0:8080", "config listen = %q, want 0.0.0.0:8080", str(r.cfg, "listen"))
	c.check(str(r.cfg, "public_url") != "", "config public_url is empty")
	_, hasCallers := r.cfg["callers"].(obj)
	c.check(hasCallers || r.cfg["allow_unauthenticated"] == true, "config has neither callers nor allow_unauthenticated: sidekey would refuse to start")

	// The listener's port is named for its scheme: http, or https with tls.
	scheme := r.scheme()
	port := named(list(r.sidekey, "ports"), scheme)
	c.check(fmt.Sprint(get(port, "containerPort")) == "8080", "no container port 8080 named %s", scheme)
	probes := []struct{ probe, path string }{
		{"startupProbe", "/_sidekey/healthz"}, {"livenessProbe", "/_sidekey/healthz"}, {"readinessProbe", "/_sidekey/readyz"},
	}
	for _, p := range probes {
		c.check(str(r.sidekey, p.probe, "httpGet", "path") == p.path, "%s path = %q, want %s", p.probe, str(r.sidekey, p.probe, "httpGet", "path"), p.path)
		c.check(fmt.Sprint(get(r.sidekey, p.probe, "httpGet", "port")) == scheme, "%s does not probe port %s", p.probe, scheme)
		got := str(r.sidekey, p.probe, "httpGet", "scheme")
		c.check(strings.EqualFold(got, scheme) || got == "" && scheme == "http", "%s scheme = %q, want %s", p.probe, got, strings.ToUpper(scheme))
	}
	res := r.sidekey["resources"]
	c.check(str(res, "requests", "cpu") == "50m" && str(res, "requests", "memory") == "64Mi", "resource requests are not 50m/64Mi")
	c.check(str(res, "limits", "memory") == "256Mi", "memory limit is not 256Mi")
	ann := get(r.dep, "spec", "template", "metadata", "annotations")
	for _, a := range []string{"checksum/config", "checksum/secret"} {
		c.check(len(str(ann, a)) == 64, "pod annotation %s missing", a)
	}

	selector := get(r.dep, "spec", "selector", "matchLabels")
	svcs := kind(r.docs, "Service")
	c.check(len(svcs) == 1, "want 1 Service, found %d", len(svcs))
	for _, s := range svcs {
		p := named(list(s, "spec", "ports"), scheme)
		c.check(get(p, "port") != nil && fmt.Sprint(get(p, "targetPort")) == scheme, "Service has no port named %s to targetPort %s", scheme, scheme)
		c.check(fmt.Sprint(get(s, "spec", "selector")) == fmt.Sprint(selector), "Service selector differs from the Deployment's")
	}
	for _, sa := range kind(r.docs, "ServiceAccount") {
		c.check(sa["automountServiceAccountToken"] == false, "ServiceAccount automountServiceAccountToken is not false")
	}
	checkNetworkPolicy(c, r, selector)
	checkScaling(c, r, selector)
	for _, sm := range kind(r.docs, "ServiceMonitor") {
		c.check(str(sm, "spec", "endpoints", 0, "path") == "/_sidekey/metrics" && str(sm, "spec", "endpoints", 0, "port") == scheme,
			"ServiceMonitor does not scrape /_sidekey/metrics on port %s", scheme)
		c.check(str(sm, "spec", "endpoints", 0, "scheme") == scheme, "ServiceMonitor scheme = %q, want %s", str(sm, "spec", "endpoints", 0, "scheme"), scheme)
	}
	checkTLS(c, r)
	checkDrain(c, r)
}

// checkDrain: a stopping pod sleeps in preStop, then keeps serving for
// drain_delay with readyz 503, then drains for shutdown_timeout, and
// Kubernetes waits for all of it.
func checkDrain(c *checker, r *rendered) {
	seconds := func(key, def string) float64 {
		v := str(r.cfg, key)
		if v == "" {
			v = def
		}
		d, err := time.ParseDuration(v)
		c.check(err == nil, "config %s = %q is not a duration", key, v)
		return d.Seconds()
	}
	sleep, _ := strconv.ParseFloat(fmt.Sprint(get(r.sidekey, "lifecycle", "preStop", "sleep", "seconds")), 64)
	c.check(sleep > 0, "the sidekey container has no preStop sleep")
	drain := seconds("drain_delay", "0s")
	c.check(drain > 0, "config drain_delay is not set: the listener would close as readiness flips")
	grace, _ := strconv.ParseFloat(fmt.Sprint(get(r.dep, "spec", "template", "spec", "terminationGracePeriodSeconds")), 64)
	need := sleep + drain + seconds("shutdown_timeout", "15s")
	c.check(grace >= need, "terminationGracePeriodSeconds %v < preStop %v + drain_delay %v + shutdown_timeout: pods would be killed mid-drain", grace, sleep, drain)
}

// checkNetworkPolicy: only labelled client pods reach the http port; an
// egress policy, when rendered, lets DNS and HTTPS out.
func checkNetworkPolicy(c *checker, r *rendered, selector any) {
	var nps, egress []obj
	for _, np := range kind(r.docs, "NetworkPolicy") {
		if slices.Contains(list(np, "spec", "policyTypes"), "Egress") {
			egress = append(egress, np)
		} else {
			nps = append(nps, np)
		}
	}
	c.check(len(nps) == 1, "want 1 ingress NetworkPolicy, found %d", len(nps))
	for _, np := range egress {
		c.check(fmt.Sprint(get(np, "spec", "podSelector", "matchLabels")) == fmt.Sprint(selector), "egress NetworkPolicy selects other pods than the Deployment's")
		ports := map[string]bool{}
		for i := range list(np, "spec", "egress") {
			for j := range list(np, "spec", "egress", i, "ports") {
				ports[fmt.Sprint(get(np, "spec", "egress", i, "ports", j, "port"))] = true
			}
		}
		c.check(ports["53"] && ports["443"], "egress NetworkPolicy lets out ports %v; want DNS (53) and HTTPS (443)", ports)
	}
	for _, np := range nps {
		c.check(fmt.Sprint(get(np, "spec", "podSelector", "matchLabels")) == fmt.Sprint(selector), "NetworkPolicy selects other pods than the Deployment's")
		c.check(slices.Contains(list(np, "spec", "policyTypes"), "Ingress"), "NetworkPolicy does not restrict ingress")
		rules := list(np, "spec", "ingress")
		c.check(len(rules) == 1, "NetworkPolicy has %d ingress rules, want 1", len(rules))
		from := list(np, "spec", "ingress", 0, "from")
		c.check(len(from) > 0, "NetworkPolicy admits everyone (no from)")
		labels, _ := get(from, 0, "podSelector", "matchLabels").(obj)
		c.check(len(labels) > 0, "NetworkPolicy's first peer is not a labelled pod selector")
		c.check(fmt.Sprint(get(np, "spec", "ingress", 0, "ports", 0, "port")) == r.scheme(), "NetworkPolicy does not name port %s", r.scheme())
	}
}

// checkScaling: replicas, the file store's volume, PDB and HPA agree.
func checkScaling(c *checker, r *rendered, selector any) {
	storage := str(r.cfg, "storage", "type")
	hpas := kind(r.docs, "HorizontalPodAutoscaler")
	replicas := fmt.Sprint(get(r.dep, "spec", "replicas"))
	scaled := len(hpas) > 0 || replicas != "1"
	if scaled {
		c.check(storage == "redis", "%s replicas (HPA: %d) with storage %q: needs redis", replicas, len(hpas), storage)
	}
	if scaled {
		spread := get(r.dep, "spec", "template", "spec", "affinity", "podAntiAffinity") != nil
		c.check(spread, "%s replicas (HPA: %d) without pod anti-affinity: one node's loss could take them all", replicas, len(hpas))
	}
	pdbs := kind(r.docs, "PodDisruptionBudget")
	c.check(len(pdbs) == map[bool]int{true: 1, false: 0}[scaled], "%d PodDisruptionBudgets with scaled=%v", len(pdbs), scaled)
	for _, p := range pdbs {
		c.check(fmt.Sprint(get(p, "spec", "selector", "matchLabels")) == fmt.Sprint(selector), "PodDisruptionBudget selects other pods")
	}
	for _, h := range hpas {
		c.check(str(h, "spec", "scaleTargetRef", "kind") == "Deployment" && str(h, "spec", "scaleTargetRef", "name") == str(r.dep, "metadata", "name"),
			"HPA does not scale the Deployment")
		c.check(get(r.dep, "spec", "replicas") == nil, "Deployment sets replicas although an HPA scales it")
	}
	// /data holds the file store, and with tls acme certmagic's storage.
	data := r.volumeAt("/data")
	if storage == "file" || r.tlsMode() == "acme" {
		c.check(data != nil, "storage %q, tls %q without a /data volume", storage, r.tlsMode())
		c.check(str(r.cfg, "storage", "path") == "/data", "storage.path = %q, want /data", str(r.cfg, "storage", "path"))
	} else {
		c.check(data == nil, "storage %q but a /data volume is mounted", storage)
	}
}

// checkScenario: what each ci/*-values.yaml promises.
func checkScenario(c *checker, r *rendered, scenario string) {
	has := func(k string) int { return len(kind(r.docs, k)) }
	storage := str(r.cfg, "storage", "type")
	switch scenario {
	case "default":
		c.check(storage == "file", "storage %q, want file", storage)
		c.check(get(r.volumeAt("/data"), "emptyDir") != nil, "the /data volume is not an emptyDir")
		c.check(fmt.Sprint(get(r.dep, "spec", "replicas")) == "1", "replicas is not 1")
		c.check(has("Secret") == 1, "want the chart's Secret")
		c.check(has("HorizontalPodAutoscaler")+has("PodDisruptionBudget")+has("ServiceMonitor") == 0, "HPA, PDB or ServiceMonitor rendered by default")
	case "ha":
		c.check(storage == "redis", "storage %q, want redis", storage)
		for _, k := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "Secret"} {
			c.check(has(k) == 1, "no %s", k)
		}
		c.check(fmt.Sprint(get(first(r.docs, "HorizontalPodAutoscaler"), "spec", "minReplicas")) == "3", "HPA minReplicas is not 3")
		for _, k := range [][]any{{"storage", "key_file"}, {"storage", "redis", "password_file"}, {"admin_token_file"}} {
			c.check(str(r.cfg, k...) != "", "config %v is not set", k)
		}
		c.check(get(first(r.docs, "NetworkPolicy"), "spec", "ingress", 0, "from", 1, "namespaceSelector") != nil, "the metrics namespace is not admitted")
	case "sentinel", "cluster":
		c.check(storage == "redis", "storage %q, want redis", storage)
		c.check(get(r.cfg, "storage", "redis", scenario) != nil, "config storage.redis.%s is not rendered", scenario)
		c.check(str(r.cfg, "storage", "redis", "addr") == "", "storage.redis.addr rendered beside %s", scenario)
		c.check(len(kind(r.docs, "NetworkPolicy")) == 2, "want the ingress and the egress NetworkPolicy")
		if scenario == "sentinel" {
			c.check(str(r.cfg, "storage", "redis", "sentinel", "password_file") == SecretDir+"/redis-sentinel-password",
				"storage.redis.sentinel.password_file = %q, want the chart's Secret", str(r.cfg, "storage", "redis", "sentinel", "password_file"))
		}
	case "existing-secret":
		c.check(has("Secret") == 0, "a Secret is rendered although existingSecret is set")
		c.check(str(r.volumeAt(SecretDir), "secret", "secretName") == "sidekey-credentials", "the existing Secret is not mounted")
		c.check(str(r.cfg, "callers", "billing-app", "key_file") == SecretDir+"/billing-app-key", "caller key_file does not name the existing key")
		c.check(str(r.cfg, "storage", "key_file") == SecretDir+"/store-key", "storage.key_file does not name the existing key")
		c.check(str(r.cfg, "apps", "simple", "client_secret_file") == SecretDir+"/simple-app-client-secret", "app client_secret_file does not name the existing key")
	case "callers":
		callers, _ := r.cfg["callers"].(obj)
		c.check(len(callers) >= 3, "want at least 3 callers, got %d", len(callers))
		for name := range callers {
			hash, file := str(callers, name, "key_sha256"), str(callers, name, "key_file")
			c.check((hash == "") != (file == ""), "caller %s needs exactly one of key_sha256, key_file", name)
		}
		c.check(str(r.cfg, "admin_token_file") != "", "no admin_token_file")
		c.check(r.cfg["allow_unauthenticated"] == nil, "allow_unauthenticated rendered although not set")
		c.check(get(first(r.docs, "NetworkPolicy"), "spec", "ingress", 0, "from", 0, "namespaceSelector") != nil, "clientNamespaceSelector not rendered")
	case "apps":
		checkApps(c, r)
	case "tls-files":
		c.check(r.tlsMode() == "files", "tls.mode %q, want files", r.tlsMode())
		c.check(str(r.volumeAt(TLSDir), "secret", "secretName") == "sidekey-tls", "the Secret sidekey-tls is not mounted at %s", TLSDir)
		c.check(get(first(r.docs, "ServiceMonitor"), "spec", "endpoints", 0, "tlsConfig", "serverName") != nil, "ServiceMonitor has no tlsConfig")
	case "mtls":
		checkMTLS(c, r)
	case "tls-acme":
		c.check(r.tlsMode() == "acme", "tls.mode %q, want acme", r.tlsMode())
		c.check(storage == "memory", "storage %q, want memory (its /data is an emptyDir for certmagic)", storage)
		c.check(get(r.volumeAt("/data"), "emptyDir") != nil, "the /data volume is not an emptyDir")
		c.check(str(r.cfg, "public_url") == "https://sidekey.example.com", "public_url = %q, want https://{first domain}", str(r.cfg, "public_url"))
	}
}

// checkApps: apps keep their secrets in files like tenants, tenants using an
// app need no provider, and callers may be granted apps.
func checkApps(c *checker, r *rendered) {
	apps, _ := r.cfg["apps"].(obj)
	c.check(len(apps) >= 1, "no apps rendered")
	for name := range apps {
		c.check(str(apps, name, "provider") != "", "app %s has no provider", name)
		c.check(get(apps, name, "client_secret") == nil, "app %s has client_secret in the config", name)
		c.check(strings.HasPrefix(str(apps, name, "client_secret_file"), SecretDir+"/app."+name+"."), "app %s client_secret_file = %q, want the chart's Secret", name, str(apps, name, "client_secret_file"))
	}
	tenants, _ := r.cfg["tenants"].(obj)
	using := map[string]int{}
	for name := range tenants {
		if app := str(tenants, name, "app"); app != "" {
			using[app]++
			c.check(apps[app] != nil, "tenant %s names app %q, which is not rendered", name, app)
		}
	}
	c.check(slices.Max(append(slices.Collect(maps.Values(using)), 0)) >= 2, "no app is used by two tenants: %v", using)
	granted := false
	callers, _ := r.cfg["callers"].(obj)
	for name := range callers {
		granted = granted || len(list(callers, name, "apps")) > 0
	}
	c.check(granted, "no caller is granted an app")
	c.check(get(r.cfg, "tenants", "beta-hippo", "rate_limit", "max_wait") == "30s", "beta-hippo's rate_limit is not rendered")
}
