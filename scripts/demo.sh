#!/usr/bin/env bash
# The demo behind `make demo`:
#  1. the image toolkit, briefly: inspect and validate a bundled real package (a Cisco-style OVF from COT's
#     test data), pack it into an OVA in one pass, validate the OVA;
#  2. the main job (scripts/demo_recover.py): protect a three-VM application to a second site on a private
#     libvirtd, run a test failover in an isolated network, print its report with the RTO, clean up.
# Exits non-zero when a step fails; everything it started (daemon, domains, networks, files) is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
VMF="$VENV/bin/vmferry"
SAMPLE="tests/data/cot"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# libguestfs under TCG unless told otherwise: an openable /dev/kvm is no proof that KVM runs guests (on this
# project's CI host it opens and QEMU then dies with "KVM internal error ... emulation failure")
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "image toolkit: vmferry inspect $SAMPLE/input.ovf"
$VMF inspect "$SAMPLE/input.ovf"

step "vmferry validate $SAMPLE/input.ovf   (XSD, references, SHA1 manifest)"
$VMF validate "$SAMPLE/input.ovf"

mkdir "$work/pkg"
cp "$SAMPLE"/{input.ovf,input.vmdk,input.iso,sample_cfg.txt} "$work/pkg/"
step "vmferry pack -> input.ova, then validate it   (streamed, each byte hashed once)"
$VMF pack "$work/pkg" -o "$work/input.ova"
$VMF validate "$work/input.ova"

step "the main job: protect an application to a second site, test failover, RTO"
"$VENV/bin/python" scripts/demo_recover.py
printf '\ndemo finished\n'
