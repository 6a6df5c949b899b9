"""posgw EMV kernel: codecs, transport, card commands and the contact/contactless transaction flow.

This package imports nothing else of posgw (see ARCHITECTURE.md). Readers reach it through the
one-method card channel declared in :mod:`terminal.transport`.
"""
