# SpinKube as its docs describe it: cert-manager, runtime-class-manager
# (successor of the kwasm operator) installing containerd-shim-spin on the
# Spin nodes and creating the RuntimeClass, the spin-operator CRDs, and the
# spin-operator. The SpinAppExecutor is namespaced and ships with the app
# (env/k8s/executor.yaml).

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_version
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true
  wait             = true

  set = [
    { name = "crds.enabled", value = "true" },
  ]

  depends_on = [time_sleep.cluster_rbac]
}

resource "helm_release" "runtime_class_manager" {
  name             = "runtime-class-manager"
  repository       = "oci://ghcr.io/spinframework/charts"
  chart            = "runtime-class-manager"
  version          = var.runtime_class_manager_version
  namespace        = "runtime-class-manager"
  create_namespace = true
  atomic           = true
  wait             = true

  depends_on = [helm_release.cert_manager]
}

# Local chart: the spin-operator CRDs (crds/, copies of the release
# manifests; scripts/check-env validates env/k8s against them and compares
# them with a reference copy when SHARED_DIR supplies one),
# the Shim that makes runtime-class-manager install containerd-shim-spin
# and create RuntimeClass wasmtime-spin-v2, the ACME ClusterIssuer, and the
# Kyverno policy that spreads Spin pods over zones.
resource "helm_release" "spinkube_platform" {
  name             = "spinkube-platform"
  chart            = "${path.module}/charts/spinkube-platform"
  namespace        = "spin-operator"
  create_namespace = true
  atomic           = true
  wait             = true

  values = [yamlencode({
    shim = {
      version = var.spin_shim_version
    }
    acme = {
      email  = var.acme_email
      server = var.acme_server
    }
  })]

  depends_on = [helm_release.runtime_class_manager, helm_release.kyverno]
}

resource "helm_release" "spin_operator" {
  name             = "spin-operator"
  repository       = "oci://ghcr.io/spinframework/charts"
  chart            = "spin-operator"
  version          = var.spin_operator_version
  namespace        = "spin-operator"
  create_namespace = true
  atomic           = true
  wait             = true

  depends_on = [helm_release.spinkube_platform]
}

# Spin sends OTLP traces to this collector (env/k8s/executor.yaml); it
# forwards them to Application Insights. Apps reach it, not the internet.
resource "helm_release" "otel_collector" {
  name             = "otel-collector"
  repository       = "https://open-telemetry.github.io/opentelemetry-helm-charts"
  chart            = "opentelemetry-collector"
  version          = var.otel_collector_chart_version
  namespace        = "observability"
  create_namespace = true
  atomic           = true
  wait             = true

  values = [yamlencode({
    mode             = "deployment"
    replicaCount     = 2
    fullnameOverride = "otel-collector"
    image            = { repository = "otel/opentelemetry-collector-contrib" }
    ports = {
      otlp           = { enabled = true }
      otlp-http      = { enabled = true }
      jaeger-compact = { enabled = false }
      jaeger-thrift  = { enabled = false }
      jaeger-grpc    = { enabled = false }
      zipkin         = { enabled = false }
    }
    config = {
      exporters = {
        azuremonitor = { connection_string = "$${env:APPLICATIONINSIGHTS_CONNECTION_STRING}" }
      }
      service = {
        pipelines = {
          traces  = { receivers = ["otlp"], processors = ["memory_limiter", "batch"], exporters = ["azuremonitor"] }
          metrics = { receivers = ["otlp"], processors = ["memory_limiter", "batch"], exporters = ["azuremonitor"] }
          logs    = { receivers = ["otlp"], processors = ["memory_limiter", "batch"], exporters = ["azuremonitor"] }
        }
      }
    }
  })]

  set_sensitive = [
    { name = "extraEnvs[0].name", value = "APPLICATIONINSIGHTS_CONNECTION_STRING" },
    { name = "extraEnvs[0].value", value = azurerm_application_insights.main.connection_string },
  ]

  depends_on = [time_sleep.cluster_rbac]
}

# Stakater Reloader: Spin reads its [[client_tls]] files and nginx its
# certificates only at start, so when cert-manager renews a certificate (or
# the trust bundle changes) the Deployments that mount it must restart. The
# split manifests name their Secrets in secret.reloader.stakater.com/reload
# annotations (SpinApp deploymentAnnotations, terminator Deployments);
# Reloader then performs a rolling restart, which the PDBs keep safe. Only
# annotated workloads are touched (autoReloadAll stays false).
resource "helm_release" "reloader" {
  name             = "reloader"
  repository       = "https://stakater.github.io/stakater-charts"
  chart            = "reloader"
  version          = var.reloader_chart_version
  namespace        = "reloader"
  create_namespace = true
  atomic           = true
  wait             = true

  values = [yamlencode({
    reloader = {
      watchGlobally  = true
      reloadStrategy = "annotations"
    }
  })]

  depends_on = [time_sleep.cluster_rbac]
}

# Kyverno, for one mutation only: topology spread constraints on Spin pods
# at admission (charts/spinkube-platform/templates/zone-spread-policy.yaml).
# The SpinApp CRD has no field for it and spin-operator reconciles its
# Deployments, so the Pods are mutated, not the Deployments. Two admission
# controller replicas; the policy is failurePolicy Ignore, so an outage of
# Kyverno never blocks pod creation.
resource "helm_release" "kyverno" {
  name             = "kyverno"
  repository       = "https://kyverno.github.io/kyverno"
  chart            = "kyverno"
  version          = var.kyverno_chart_version
  namespace        = "kyverno"
  create_namespace = true
  atomic           = true
  wait             = true

  values = [yamlencode({
    admissionController  = { replicas = 2 }
    backgroundController = { enabled = false }
    cleanupController    = { enabled = false }
    reportsController    = { enabled = false }
  })]

  depends_on = [time_sleep.cluster_rbac]
}
