#!/usr/bin/env bash
# The demo behind `make demo`: inspect and validate a bundled real package (a Cisco-style OVF with three
# deployment profiles, from COT's test data), pack it into an OVA in one pass, and check the OVA.
set -euo pipefail
cd "$(dirname "$0")/.."
VMF=".venv/bin/vmferry"
SAMPLE="tests/data/cot"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "vmferry inspect $SAMPLE/input.ovf"
$VMF inspect "$SAMPLE/input.ovf"

step "vmferry validate $SAMPLE/input.ovf   (XSD, references, SHA1 manifest)"
$VMF validate "$SAMPLE/input.ovf"

mkdir "$work/pkg"
cp "$SAMPLE"/{input.ovf,input.vmdk,input.iso,sample_cfg.txt} "$work/pkg/"
step "vmferry pack -> input.ova   (descriptor first, disks streamed while hashed, SHA256 manifest last)"
$VMF pack "$work/pkg" -o "$work/input.ova"
ls -l "$work/input.ova"

step "vmferry validate input.ova   (read as a stream, each byte hashed once)"
$VMF validate "$work/input.ova"

step "vmferry inspect --json input.ova   (first 600 characters)"
$VMF inspect --json "$work/input.ova" | cut -c1-600

if $VMF check --help >/dev/null 2>&1; then
  step "vmferry check $SAMPLE/ubuntu.2.0.ovf --target vmware   (VirtualBox export -> VMware)"
  $VMF check "$SAMPLE/ubuntu.2.0.ovf" --target vmware --no-guest || true
fi
printf '\ndemo finished\n'
