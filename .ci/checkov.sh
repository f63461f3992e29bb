#!/usr/bin/env bash
# checkov: static security scan of template.yaml and of its nested monitoring application,
# monitoring.yaml (framework cloudformation; checkov reads SAM templates directly). Fails
# on any finding.
#
#   bash .ci/checkov.sh          (from the repository root, or anywhere)
#
# checkov lives in its own virtualenv (.venv-checkov, Python 3.11): its pins clash
# with both the application's venv and the SAM CLI's.
# pip runs with -qq (errors only): this keeps unrelated index warnings out.
#
# Suppressions live in the templates only, next to the resource they concern, each
# with its reason:
#   Metadata:
#     checkov:
#       skip:
#         - id: CKV_AWS_...
#           comment: "why"
# Never pass --skip-check here, and never soft-fail: a new finding must either be
# fixed or be justified in the template that has it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CHECKOV_VERSION="3.3.30"
VENV="$ROOT/.venv-checkov"
PINS="checkov==${CHECKOV_VERSION}"

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

if [[ ! -x "$VENV/bin/checkov" || "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]]; then
  log "Creating $VENV with $PINS"
  command -v python3 >/dev/null || die "python3 (3.11) not found"
  [[ -d "$VENV" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check "$PINS"
  echo "$PINS" > "$VENV/.pins"
else
  log "Reusing $VENV ($PINS)"
fi

# Offline: no Prisma Cloud guideline/mapping download, no PyPI update check,
# no results upload (no API key is ever given).
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true

log "checkov $CHECKOV_VERSION (cloudformation) template.yaml monitoring.yaml"
"$VENV/bin/checkov" \
  --file template.yaml \
  --file monitoring.yaml \
  --framework cloudformation \
  --skip-download \
  --compact \
  --quiet
