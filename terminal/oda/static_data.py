"""Static data to be authenticated (EMV 4.4 Book 3, 10.3; Book 2, 5.4 and 6.4).

The static data signed by the issuer (SDA) or bound in the ICC certificate (DDA, CDA, fDDA) is
built from the records named by the AFL (tag 94) entries' "number of records involved in offline
data authentication" (byte 4), in AFL order, followed by the values of the tags in the Static
Data Authentication Tag List (9F4A):

* records of SFI 1-10: the value of the record template (tag ``70`` and its length removed);
  a record of such an SFI that is not a ``70`` template makes ODA fail;
* records of SFI 11-30: the record template, tag and length included;
* 9F4A may only list tag ``82`` (AIP); anything else makes ODA fail.

Padding (Book 3, Annex B: ``00`` bytes may occur before, between and after data objects): a
record may carry ``00`` bytes before or after its ``70`` template. They are not part of the
template, so they are left out of the static data. ``00`` bytes *inside* the template (between
the data objects it holds) are part of the template's value, which is what the issuer signed,
so they are hashed as they are: the public M/Chip transcript ``mock-msc-offline-2.json`` has
such a record and its ICC certificate verifies only with them included.

:class:`StaticDataCollector` is fed by the kernel while it reads the records, and produces the
byte string (or an :class:`~terminal.oda.results.OdaFailure`) once reading is over.
"""

from __future__ import annotations

from collections.abc import Mapping

from terminal.errors import CardDataError
from terminal.oda.results import OdaCheck, OdaFailure, OdaStage

__all__ = ["AflEntry", "StaticDataCollector", "parse_afl"]

TAG_AIP = 0x82
_STAGE = OdaStage.STATIC_DATA

AflEntry = tuple[int, int, int, int]
"""(SFI, first record, last record, number of records for ODA), Book 3, 10.2."""


def parse_afl(afl: bytes) -> list[AflEntry]:
    """Parse an Application File Locator, tag 94 (EMV 4.4 Book 3, 10.2).

    Raises:
        CardDataError: when the AFL is empty or not a multiple of 4 bytes, an SFI is 0 or 31, a
            first record is 0, a last record precedes the first, or the ODA count exceeds the
            range.
    """
    if not afl or len(afl) % 4:
        raise CardDataError(f"AFL of {len(afl)} bytes is not a multiple of 4", tag=0x94)
    entries: list[AflEntry] = []
    for offset in range(0, len(afl), 4):
        sfi_byte, first, last, oda = afl[offset : offset + 4]
        sfi = sfi_byte >> 3
        if sfi_byte & 0x07 or not 1 <= sfi <= 30:
            raise CardDataError("invalid SFI in AFL entry", tag=0x94, offset=offset)
        if first == 0 or last < first or oda > last - first + 1:
            raise CardDataError("invalid record range in AFL entry", tag=0x94, offset=offset)
        entries.append((sfi, first, last, oda))
    return entries


def _template(record: bytes) -> tuple[int, int] | None:
    """Where the one ``70`` template of a record lies: (start, end of its value) or ``None``.

    ``00`` padding may come before and after the template (Book 3, Annex B); anything else
    around it, a second template, or a length that runs past the record gives ``None``.
    """
    start = 0
    while start < len(record) and record[start] == 0x00:
        start += 1
    if len(record) - start < 2 or record[start] != 0x70:
        return None
    first = record[start + 1]
    if first < 0x80:
        header, length = 2, first
    elif first in (0x81, 0x82) and len(record) >= start + 2 + (first & 0x7F):
        count = first & 0x7F
        header = 2 + count
        length = int.from_bytes(record[start + 2 : start + header], "big")
    else:
        return None
    end = start + header + length
    if end > len(record) or any(record[end:]):
        return None
    return start, end


def _template_value(record: bytes) -> bytes | None:
    """The value of a record's ``70`` template (padding around it dropped), else ``None``."""
    found = _template(record)
    if found is None:
        return None
    start, end = found
    first = record[start + 1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return record[start + header : end]


def _whole_template(record: bytes) -> bytes:
    """An SFI 11-30 record as hashed: its ``70`` template with tag and length, padding dropped.

    A record that is not one padded ``70`` template is taken as read (Book 3, 10.3 does not
    require the template for these SFIs).
    """
    found = _template(record)
    if found is None:
        return bytes(record)
    start, end = found
    return record[start:end]


class StaticDataCollector:
    """Collects the records that take part in ODA while the kernel reads them (Book 3, 10.3).

    Example::

        collector = StaticDataCollector(afl)
        for sfi, number, record in records_read:
            collector.add_record(sfi, number, record)
        static_data = collector.finish(sda_tag_list=tags.get(0x9F4A), values={0x82: aip})
    """

    def __init__(self, afl: bytes) -> None:
        """Prepare for the records named by ``afl`` (tag 94; raises CardDataError if malformed)."""
        self._order: list[tuple[int, int]] = []
        for sfi, first, _last, oda in parse_afl(afl):
            self._order.extend((sfi, first + k) for k in range(oda))
        self._wanted = set(self._order)
        self._parts: dict[tuple[int, int], bytes] = {}
        self._failure: OdaFailure | None = None

    def wants(self, sfi: int, record_number: int) -> bool:
        """True when the record takes part in offline data authentication."""
        return (sfi, record_number) in self._wanted

    def add_record(self, sfi: int, record_number: int, record: bytes) -> None:
        """Feed one READ RECORD response data field (without SW1 SW2).

        Records that are not for ODA are ignored. A non-``70`` record of SFI 1-10 is remembered
        as a failure that :meth:`finish` reports (ODA fails; the transaction goes on).
        """
        if not self.wants(sfi, record_number):
            return
        if sfi <= 10:
            value = _template_value(record)
            if value is None:
                if self._failure is None:
                    detail = f"SFI {sfi} record {record_number} not a 70 template"
                    self._failure = OdaFailure(_STAGE, OdaCheck.STATIC_DATA, detail)
                return
            self._parts[(sfi, record_number)] = value
        else:
            self._parts[(sfi, record_number)] = _whole_template(record)

    def finish(
        self, sda_tag_list: bytes | None, values: Mapping[int, bytes]
    ) -> bytes | OdaFailure:
        """Return the static data to be authenticated, or why it cannot be built.

        Args:
            sda_tag_list: The value of tag 9F4A, or ``None`` when the card has none.
            values: Where to take the listed tags' values from (at least ``0x82``, the AIP).

        Returns:
            The concatenated records in AFL order followed by the listed tag values, or an
            :class:`OdaFailure` (record not a 70 template, ODA record not read, 9F4A naming a
            tag other than 82, AIP absent).
        """
        if self._failure is not None:
            return self._failure
        missing = [key for key in self._order if key not in self._parts]
        if missing:
            sfi, number = missing[0]
            return OdaFailure(_STAGE, OdaCheck.DATA_MISSING, f"SFI {sfi} record {number} not read")
        out = b"".join(self._parts[key] for key in self._order)
        if sda_tag_list:
            if sda_tag_list != bytes((TAG_AIP,)):
                return OdaFailure(_STAGE, OdaCheck.STATIC_DATA, "9F4A lists a tag other than 82")
            aip = values.get(TAG_AIP)
            if aip is None:
                return OdaFailure(_STAGE, OdaCheck.DATA_MISSING, "AIP (82) absent")
            out += aip
        return out
