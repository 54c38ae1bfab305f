#!/usr/bin/env bash
# Writes (or, with "validate", checks) main.snapshot.json, containerapps.snapshot.json and deployer/main.snapshot.json: every resource the Bicep
# would deploy with its .bicepparam, properties evaluated, for review in diffs. Fixed placeholder ids keep it stable.
# The Bicep CLI: $BICEP, else `bicep` on PATH (the tests use the NuGet package Azure.Bicep.CommandLine.linux-x64).
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-overwrite}"
which="${2:-all}" # main, containerapps, deployer or all
snapshot() {
  "${BICEP:-bicep}" snapshot "$1" --mode "$mode" \
    --tenant-id 00000000-0000-0000-0000-0000000000aa \
    --subscription-id 00000000-0000-0000-0000-000000000001 \
    --resource-group "$2" \
    --location westeurope
}
if [ "$which" = main ] || [ "$which" = all ]; then snapshot main.bicepparam rg-bridge; fi
if [ "$which" = containerapps ] || [ "$which" = all ]; then snapshot containerapps.bicepparam rg-bridge; fi
if [ "$which" = deployer ] || [ "$which" = all ]; then snapshot deployer/main.bicepparam rg-bridge-deployers; fi
