from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Node(_message.Message):
    __slots__ = ("id", "addrs")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    addrs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, id: _Optional[bytes] = ..., addrs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("type", "key", "count", "ttl", "sender_addrs")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PING: _ClassVar[Request.Type]
        FIND_SUCCESSORS: _ClassVar[Request.Type]
        GET_SUCC_AND_PRED: _ClassVar[Request.Type]
        NOTIFY: _ClassVar[Request.Type]
        GET_FINGERS: _ClassVar[Request.Type]
    PING: Request.Type
    FIND_SUCCESSORS: Request.Type
    GET_SUCC_AND_PRED: Request.Type
    NOTIFY: Request.Type
    GET_FINGERS: Request.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    SENDER_ADDRS_FIELD_NUMBER: _ClassVar[int]
    type: Request.Type
    key: bytes
    count: int
    ttl: int
    sender_addrs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, type: _Optional[_Union[Request.Type, str]] = ..., key: _Optional[bytes] = ..., count: _Optional[int] = ..., ttl: _Optional[int] = ..., sender_addrs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("status", "successors", "predecessors", "fingers", "hops", "approximate")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OK: _ClassVar[Response.Status]
        NOT_READY: _ClassVar[Response.Status]
        FAILED: _ClassVar[Response.Status]
    OK: Response.Status
    NOT_READY: Response.Status
    FAILED: Response.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSORS_FIELD_NUMBER: _ClassVar[int]
    PREDECESSORS_FIELD_NUMBER: _ClassVar[int]
    FINGERS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATE_FIELD_NUMBER: _ClassVar[int]
    status: Response.Status
    successors: _containers.RepeatedCompositeFieldContainer[Node]
    predecessors: _containers.RepeatedCompositeFieldContainer[Node]
    fingers: _containers.RepeatedCompositeFieldContainer[Node]
    hops: int
    approximate: bool
    def __init__(self, status: _Optional[_Union[Response.Status, str]] = ..., successors: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., predecessors: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., fingers: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., hops: _Optional[int] = ..., approximate: bool = ...) -> None: ...
