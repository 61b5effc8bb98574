#!/usr/bin/env bash
# Starts one tenant control plane on a fresh temporary data dir, in the
# foreground. Ctrl-C stops it.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir="${KNEST_DATA_DIR:-$(mktemp -d -t knestd-XXXXXX)}"
cat <<MSG
knestd data dir: ${dir}
When knestd logs "Tenant control plane is ready", in another shell:

    bin/kubectl --kubeconfig ${dir}/admin.kubeconfig get namespaces

MSG
exec bin/knestd --data-dir "${dir}" --name demo --secure-port "${KNEST_PORT:-0}"
