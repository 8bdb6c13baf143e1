from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("kind", "id", "timestamp_ms", "protocol", "author_key", "signature", "payload")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        HELLO: _ClassVar[Envelope.Kind]
        MESSAGE: _ClassVar[Envelope.Kind]
        REQUEST: _ClassVar[Envelope.Kind]
        REPLY: _ClassVar[Envelope.Kind]
        ERROR: _ClassVar[Envelope.Kind]
    HELLO: Envelope.Kind
    MESSAGE: Envelope.Kind
    REQUEST: Envelope.Kind
    REPLY: Envelope.Kind
    ERROR: Envelope.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    kind: Envelope.Kind
    id: int
    timestamp_ms: int
    protocol: str
    author_key: bytes
    signature: bytes
    payload: bytes
    def __init__(self, kind: _Optional[_Union[Envelope.Kind, str]] = ..., id: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., protocol: _Optional[str] = ..., author_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., payload: _Optional[bytes] = ...) -> None: ...
