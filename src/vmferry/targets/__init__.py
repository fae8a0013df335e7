"""Targets: what each consumer really accepts (VMware, VirtualBox, Xen, generic DMTF OVF, KVM/libvirt)."""
