#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/tollgate) with real tools, each pinned and
# built from the Go module proxy into TOOLS_DIR (rebuilt only when missing):
#
#   1. helm lint --strict, on the required values and on every optional part;
#   2. helm template with the chart's defaults (plus the required values of
#      deploy/helm/ci/required-values.yaml) and with
#      deploy/helm/ci/all-on-values.yaml (ServiceMonitor, NetworkPolicy,
#      Ingress, HPA, PDB, rotated keys); each render must hold the kinds it is
#      expected to;
#   3. every rendered manifest, hooks included, validated strictly (unknown
#      fields, wrong types, missing required fields) by kubectl-validate
#      against the Kubernetes 1.30 schemas built into it, and the ServiceMonitor
#      against the CRD of the Prometheus Operator release pinned below;
#   4. a manifest with an unknown field must fail that validator (so a
#      validator that accepts anything fails this script), a render missing
#      any required value (issuer, the Secret names) must fail naming the
#      value, and one with a misspelled value must fail on values.schema.json;
#   5. TestHelmChartConfiguration (cmd/tollgate) loads the environment each
#      render gives the server and the migration Job as the server does.
#
# Why kubectl-validate and not kubeconform: kubeconform v0.8.0 builds here
# (go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0), but it
# downloads its JSON schemas from GitHub at run time. Tried on this chart's
# render (kubeconform -strict -kubernetes-version 1.30.0), every resource
# ended "failed downloading schema at https://raw.githubusercontent.com/
# yannh/kubernetes-json-schema/master/v1.30.0-standalone-strict/
# deployment-apps-v1.json: ... no such host" ("Valid: 0, Errors: 6"), since
# CI reaches only the Go module proxy, Debian and npm. kubectl-validate
# carries the schemas of Kubernetes up to 1.30 in its binary and validates
# offline; later --version values are fetched from GitHub and fail here.
set -euo pipefail
# The tools are installed inside $(…): a failure there must stop the script.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

HELM_VERSION=v3.21.4                  # v3.22.0 is served too, not approved yet
KUBECTL_VALIDATE_VERSION=v0.0.4       # the newest tag on the module proxy
KUBERNETES_VERSION=1.30               # the newest schemas built into kubectl-validate
PROMETHEUS_OPERATOR_VERSION=v0.85.0   # source of the ServiceMonitor CRD
SERVICEMONITOR_CRD_SHA256=1dae27b7189b5ce7b9ab764656c18b4c75a45cde1e6f3af6a5e84c4317628919
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tollgate-tools}

chart=deploy/helm/tollgate
ci_values=deploy/helm/ci

# install_tool NAME VERSION PACKAGE: prints the directory holding the binary,
# built with go install when it is not there yet.
install_tool() {
  local name=$1 version=$2 pkg=$3
  local dir="$TOOLS_DIR/$name-$version"
  if [ ! -x "$dir/$name" ]; then
    echo "building $name $version from the Go module proxy (go install $pkg@$version)" >&2
    local start=$SECONDS
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-trimpath go install "$pkg@$version" >&2
    echo "built $name $version in $((SECONDS - start)) s" >&2
  fi
  echo "$dir"
}

# servicemonitor_crd: prints the path of the ServiceMonitor CRD of the pinned
# Prometheus Operator release, taken from its module (checked by go.sum's
# checksum database) and then by the SHA-256 above.
servicemonitor_crd() {
  local dir="$TOOLS_DIR/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
  local crd="$dir/monitoring.coreos.com_servicemonitors.yaml"
  if [ ! -f "$crd" ]; then
    echo "fetching the ServiceMonitor CRD of prometheus-operator $PROMETHEUS_OPERATOR_VERSION from the Go module proxy" >&2
    local moddir
    mkdir -p "$work/mod"
    moddir=$(cd "$work/mod" && GOFLAGS=-mod=mod go mod download -json \
      "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$dir"
    cp "$moddir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$crd"
    chmod 0644 "$crd"
  fi
  echo "$SERVICEMONITOR_CRD_SHA256  $crd" | sha256sum --check --quiet >&2
  echo "$dir"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

helm_dir=$(install_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm)
kv_dir=$(install_tool kubectl-validate "$KUBECTL_VALIDATE_VERSION" sigs.k8s.io/kubectl-validate)
crd_dir=$(servicemonitor_crd)
helm="$helm_dir/helm"
kubectl_validate="$kv_dir/kubectl-validate"
# The module versions the binaries were built from (go install leaves helm's
# own version string without its patch number).
go version -m "$helm" | awk '$1 == "mod" {print "helm: " $2 " " $3}'
go version -m "$kubectl_validate" | awk '$1 == "mod" {print "kubectl-validate: " $2 " " $3}'

validate() {
  "$kubectl_validate" --version "$KUBERNETES_VERSION" --local-crds "$crd_dir" "$@"
}

# The validator must refuse what the API server would: a Service with a
# field Kubernetes does not know.
cat >"$work/canary.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: canary
spec:
  selector:
    app: canary
  ports:
    - port: 80
  notAField: true
EOF
if validate "$work/canary.yaml" >"$work/canary.out" 2>&1; then
  cat "$work/canary.out"
  echo "kubectl-validate accepted a Service with an unknown field: it is not validating" >&2
  exit 1
fi
grep -q 'unknown field' "$work/canary.out" || {
  cat "$work/canary.out"
  echo "kubectl-validate refused the canary, but not for its unknown field" >&2
  exit 1
}

# render NAME KINDS... -- HELM_ARGS...: lints and renders the chart, checks
# that every listed kind is in the render (and that none of those written
# !Kind is), and validates it.
render() {
  local name=$1
  shift
  local kinds=()
  while [ "$1" != -- ]; do
    kinds+=("$1")
    shift
  done
  shift
  echo "== $name: helm lint --strict"
  "$helm" lint --strict --kube-version "$KUBERNETES_VERSION.0" "$chart" "$@"
  echo "== $name: helm template"
  mkdir -p "$work/$name"
  "$helm" template tollgate "$chart" --namespace tollgate --kube-version "$KUBERNETES_VERSION.0" "$@" \
    >"$work/$name/manifests.yaml"
  local kind
  for kind in "${kinds[@]}"; do
    if [[ $kind == !* ]]; then
      if grep -q "^kind: ${kind#!}\$" "$work/$name/manifests.yaml"; then
        echo "the $name render has a ${kind#!}; it must not" >&2
        exit 1
      fi
    elif ! grep -q "^kind: $kind\$" "$work/$name/manifests.yaml"; then
      echo "the $name render has no $kind" >&2
      exit 1
    fi
  done
  echo "== $name: kubectl-validate $KUBECTL_VALIDATE_VERSION --version $KUBERNETES_VERSION"
  validate "$work/$name/manifests.yaml"
}

render default Deployment Service ServiceAccount PodDisruptionBudget HorizontalPodAutoscaler Job \
  '!ServiceMonitor' '!NetworkPolicy' '!Ingress' -- -f "$ci_values/required-values.yaml"
render all-on Deployment Service ServiceAccount PodDisruptionBudget HorizontalPodAutoscaler Job \
  ServiceMonitor NetworkPolicy Ingress -- -f "$ci_values/all-on-values.yaml"
render fixed-replicas Deployment Service '!ServiceAccount' '!PodDisruptionBudget' '!HorizontalPodAutoscaler' '!Job' -- \
  -f "$ci_values/required-values.yaml" \
  --set autoscaling.enabled=false,podDisruptionBudget.enabled=false,migrations.enabled=false,serviceAccount.create=false
render sentinel Deployment Service Job -- -f "$ci_values/sentinel-values.yaml"
if grep -q 'TOLLGATE_REDIS_URL' "$work/sentinel/manifests.yaml"; then
  echo "the sentinel render sets TOLLGATE_REDIS_URL beside TOLLGATE_REDIS_ADDRS" >&2
  exit 1
fi
grep -q '^  replicas: 2$' "$work/fixed-replicas/manifests.yaml" || {
  echo "the fixed-replicas render does not set the Deployment's replicas" >&2
  exit 1
}

# must_fail MESSAGE HELM_ARGS...: a render of the required values with
# HELM_ARGS must fail, saying MESSAGE.
must_fail() {
  local message=$1
  shift
  if "$helm" template tollgate "$chart" --kube-version "$KUBERNETES_VERSION.0" \
    -f "$ci_values/required-values.yaml" "$@" >/dev/null 2>"$work/refused.err"; then
    echo "helm template $* rendered; it must fail with: $message" >&2
    exit 1
  fi
  grep -qF "$message" "$work/refused.err" || {
    cat "$work/refused.err" >&2
    echo "helm template $* failed, but without: $message" >&2
    exit 1
  }
}

# A render without any one required value must fail and name it.
for value in issuer keys.tokenSecret.existingSecret keys.pepper.existingSecret \
  keys.keyEncryptionKey.existingSecret database.existingSecret redis.existingSecret; do
  must_fail "$value is required" --set "$value="
done
# So must a misspelled value (values.schema.json) and contradictory ones.
must_fail "additional properties 'replicaCont' not allowed" --set replicaCont=3
must_fail "redis.existingSecret and config.TOLLGATE_REDIS_ADDRS exclude each other" \
  --set config.TOLLGATE_REDIS_ADDRS=redis-0:6379
must_fail "keys.pepper.id must be 1 to 8 characters" --set keys.pepper.id=Pepper-2
must_fail 'keys.retiredPeppers: id "1" is the current keys.pepper.id' \
  --set 'keys.retiredPeppers[0].id=1,keys.retiredPeppers[0].existingSecret=old,keys.retiredPeppers[0].key=pepper'
must_fail "config: TOLLGATE_ISSUER is set by the chart" --set config.TOLLGATE_ISSUER=https://other.example.com
must_fail "terminationGracePeriodSeconds must exceed" --set terminationGracePeriodSeconds=20

# The configuration each render gives the server and the migration Job must
# load as the server loads it (every TOLLGATE_ variable known and valid, the
# key files where the variables point), with the listeners on the ports of
# the Service and the probes.
echo "== go test -run TestHelmChartConfiguration ./cmd/tollgate/"
if ! TOLLGATE_TEST_HELM_RENDER="$work" go test -count=1 -run '^TestHelmChartConfiguration$' -v ./cmd/tollgate/ \
  >"$work/go-test.out" 2>&1; then
  cat "$work/go-test.out"
  exit 1
fi
grep -E -e '--- (PASS|FAIL|SKIP)' "$work/go-test.out"
grep -q -e '^--- PASS: TestHelmChartConfiguration' "$work/go-test.out" || {
  echo "TestHelmChartConfiguration did not run" >&2
  exit 1
}
echo "helm chart checks passed"
