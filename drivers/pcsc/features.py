"""PC/SC Part 10 reader features: GET_FEATURE_REQUEST and the PIN-pad capabilities.

PC/SC Part 10 v2.02.09, 2.2: ``SCardControl(CM_IOCTL_GET_FEATURE_REQUEST)`` returns a list of
TLV entries ``tag(1) | length(1) = 4 | control code (4, big endian)``. FEATURE_VERIFY_PIN_DIRECT
is tag 0x06 and FEATURE_MODIFY_PIN_DIRECT tag 0x07. With pcsc-lite, ``SCARD_CTL_CODE(code)`` is
``0x42000000 + code`` and CM_IOCTL_GET_FEATURE_REQUEST is ``SCARD_CTL_CODE(3400)``.
"""

from __future__ import annotations

from drivers.base import PinPadCapabilities
from drivers.errors import ProtocolError

__all__ = [
    "CM_IOCTL_GET_FEATURE_REQUEST",
    "FEATURE_MODIFY_PIN_DIRECT",
    "FEATURE_VERIFY_PIN_DIRECT",
    "parse_features",
    "scard_ctl_code",
]

FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07


def scard_ctl_code(code: int) -> int:
    """pcsc-lite's ``SCARD_CTL_CODE`` (reader.h)."""
    return 0x42000000 + code


CM_IOCTL_GET_FEATURE_REQUEST = scard_ctl_code(3400)


def parse_features(data: bytes) -> PinPadCapabilities:
    """Parse a GET_FEATURE_REQUEST answer (PC/SC Part 10, 2.2).

    Raises:
        ProtocolError: a truncated entry or a length other than 4.
    """
    features: dict[int, int] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ProtocolError(f"feature list truncated at offset {offset}")
        tag, length = data[offset], data[offset + 1]
        if length != 4 or offset + 2 + length > len(data):
            raise ProtocolError(f"bad feature entry length {length} at offset {offset}")
        features[tag] = int.from_bytes(data[offset + 2 : offset + 6], "big")
        offset += 2 + length
    return PinPadCapabilities(
        verify_pin_direct=FEATURE_VERIFY_PIN_DIRECT in features,
        modify_pin_direct=FEATURE_MODIFY_PIN_DIRECT in features,
        features=features,
    )
