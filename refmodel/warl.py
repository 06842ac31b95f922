"""Legalisation of writes to satp, vsatp and hgatp (Priv. 20240411, S "satp", H "vsatp", H "hgatp").

* satp / vsatp: "If satp is written with an unsupported MODE, the entire write has no effect;
  no fields in satp are modified."  ASID is WARL: only ASIDLEN low bits are writable.
* hgatp (H "Hypervisor Guest Address Translation and Protection Register (hgatp)"): "A write to
  hgatp with an unsupported MODE value is not ignored as it is for satp. Instead, the fields of
  hgatp are WARL in the normal way, when so indicated."  So such a write still writes PPN and
  VMID; only MODE is legalised.  Which legal MODE it reads back is open: Priv. 2.3 (WARL)
  "Implementations can return any legal value on the read of a WARL field when the last write
  was of an illegal value, but the legal value returned should deterministically depend on the
  illegal written value and the architectural state of the hart" -- the implementation's choice
  is ``profile.hgatp_unsupported_mode`` ("keep": MODE keeps its previous value; "bare": MODE
  becomes Bare).  Ignoring the whole write (as for satp) is not among the allowed behaviours.
  VMID is WARL with VMIDLEN low bits writable; "the root page table is 16 KiB and must be
  aligned to a 16 KiB boundary ... the lowest two bits of the physical page number (PPN) in
  hgatp always read as zeros" (an implementation with only the defined modes "may hardwire
  PPN[1:0] to zero", which the model does in every MODE).
"""
from __future__ import annotations

PPN_MASK = (1 << 44) - 1
MODE_NAMES = {0: "bare", 8: "sv39", 9: "sv48", 10: "sv57"}
HGATP_MODE_NAMES = {0: "bare", 8: "sv39x4", 9: "sv48x4", 10: "sv57x4"}


def legalise_atp(old: int, new: int, modes, asidlen: int) -> int:
    """satp or vsatp (same layout on RV64: MODE 63:60, ASID 59:44, PPN 43:0)."""
    mode = (new >> 60) & 0xF
    if mode not in modes:
        return old
    return (mode << 60) | (((new >> 44) & ((1 << asidlen) - 1)) << 44) | (new & PPN_MASK)


def legalise_satp(old: int, new: int, profile) -> int:
    return legalise_atp(old, new, profile.satp_modes, profile.asidlen)


def legalise_vsatp(old: int, new: int, profile) -> int:
    # H "vsatp": same format and WARL behaviour as satp, for the VS-stage (VSXLEN=64).
    return legalise_atp(old, new, profile.satp_modes, profile.asidlen)


def legalise_hgatp(old: int, new: int, profile) -> int:
    mode = (new >> 60) & 0xF
    if mode not in profile.hgatp_modes:
        # Only MODE is legalised; PPN and VMID below take the written value (H "hgatp").
        if profile.hgatp_unsupported_mode == "keep":
            mode = (old >> 60) & 0xF
        elif profile.hgatp_unsupported_mode == "bare":
            mode = 0
        else:
            raise ValueError(f"hgatp_unsupported_mode {profile.hgatp_unsupported_mode!r}")
    vmid = (new >> 44) & ((1 << profile.vmidlen) - 1)
    return (mode << 60) | (vmid << 44) | (new & PPN_MASK & ~3)


def hgatp_mode_sticks(profile, mode: int) -> bool:
    """Write hgatp.MODE=mode (from Bare) and read it back: what a probe sees."""
    return (legalise_hgatp(0, mode << 60, profile) >> 60) == mode


def vmidlen_probe(profile) -> int:
    """Write all-ones to hgatp.VMID and count the ones that read back (H "hgatp")."""
    v = (legalise_hgatp(0, 0x3FFF << 44, profile) >> 44) & 0x3FFF
    return v.bit_length()
