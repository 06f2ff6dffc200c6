"""A bounded dry run of a pickle's opcodes, before any unpickler sees them.

The C unpickler trusts what a file declares: a ``BINBYTES8`` of 2**60 bytes is a read of 2**60 bytes, a
``LONG_BINPUT`` of 2**32 grows the memo to 2**32 slots, and a small file can make it repeat one big piece of work
(copy a shared dict, hash a key, fill a tensor) a million times. ``scan_pickle`` walks the opcode stream once —
by offsets into the file's bytes (an mmap), copying nothing but short names — and simulates the stack with a size
per object, so it can refuse, in time linear in the file and before anything is built:

* a declared length beyond the bytes left, a line longer than ``MAX_LINE``, an int of more than ``MAX_INT_BYTES``;
* more than ``MAX_OPS`` opcodes, a memo index that skips ahead, out-of-band buffers, and persistent ids where the
  format has none (only torch files use them: a PNG read as a pickle meets one at its second byte);
* dict keys and set items other than str, bytes, small ints, None and bools — the only kinds whose hashing is
  cheap and not steerable by the file — and appending or assigning items to anything but a list, dict or set
  (a tensor would do work in proportion to its size each time);
* more total *work* than ``work_limit``: each call (REDUCE, NEWOBJ, BUILD) is charged the sizes of its arguments
  (a shared 100 MB bytes object handed to the storage reader a thousand times costs a thousand times).

What it cannot see (how deep or shared the built objects end up) is checked on the result by
``safe_unpickle.check_graph``.
"""
from __future__ import annotations

import pickletools

from ganinv.core.errors import GaninvError

MAX_OPS = 300_000  # a 1024-px NVlabs StyleGAN2 snapshot's G and G_ema are about 15k opcodes, D and the rest fewer
MAX_LINE = 1 << 16  # protocol-0 text arguments (module names, numbers, short strings)
MAX_INT_BYTES = 32  # the largest int a torch or NVlabs file holds is torch's 10-byte magic number
MAX_TEXT = 256  # str arguments kept for STACK_GLOBAL (module and attribute names)
WORK_BASE = 10_000_000

_LENGTH_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1), pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
                  pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4), pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8)}
_FIXED = frozenset({"BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "PROTO", "FRAME"})  # ints the scan needs
_LEAF_KINDS = {"INT": "int", "BININT": "int", "BININT1": "int", "BININT2": "int", "LONG": "int", "LONG1": "int",
               "NONE": "none", "NEWTRUE": "bool", "NEWFALSE": "bool", "FLOAT": "float", "BINFLOAT": "float",
               "STRING": "str", "BINSTRING": "str", "SHORT_BINSTRING": "str", "UNICODE": "str",
               "BINUNICODE": "str", "SHORT_BINUNICODE": "str", "BINUNICODE8": "str", "BINBYTES": "bytes",
               "SHORT_BINBYTES": "bytes", "BINBYTES8": "bytes", "BYTEARRAY8": "bytearray",
               "EMPTY_LIST": "list", "EMPTY_TUPLE": "tuple", "EMPTY_DICT": "dict", "EMPTY_SET": "set",
               "GLOBAL": "global", "EXT1": "global", "EXT2": "global", "EXT4": "global"}
KEY_KINDS = frozenset({"str", "bytes", "int", "none", "bool"})
# what item assignment (SETITEM[S]) may target: a dict, or an object made by one of these dict-like callables
DICT_MAKERS = frozenset({"collections.OrderedDict", "dnnlib.EasyDict", "dnnlib.util.EasyDict", "builtins.dict",
                         "__builtin__.dict", "copyreg._reconstructor", "copy_reg._reconstructor"})

# callables whose result is a handle of fixed size however big their arguments (the storage reader's bytes, the
# storage under a tensor): passing such a result on costs 1, not the bytes again
HANDLE_MAKERS = frozenset({"torch.storage._load_from_bytes", "torch._utils._rebuild_tensor_v2",
                           "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_tensor",
                           "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
                           "torch.nn.parameter.Parameter", "torch_utils.persistence._reconstruct_persistent_obj"})


class _Node:
    """One stack object as the scan sees it: its kind, its size (elements, or bytes of str/bytes) and, for a
    tuple, the sum of its elements' sizes (what a call taking it as arguments may touch)."""

    __slots__ = ("kind", "size", "weight", "text")

    def __init__(self, kind: str, size: int = 1, weight: int = 0, text: str | None = None):
        self.kind, self.size, self.weight, self.text = kind, size, weight, text


_MARK = _Node("mark")


class _Scan:
    def __init__(self, data, end: int, persistent_ids: bool, work_limit: int):
        self.data, self.end, self.persistent_ids, self.work_limit = data, end, persistent_ids, work_limit
        self.pos = 0
        self.stack: list[_Node] = []
        self.memo: dict[int, _Node] = {}
        self.work = 0

    # --- reading arguments (index arithmetic on the buffer: nothing is copied but short names) ----------------

    def take(self, n: int) -> int:
        """Skip ``n`` bytes of argument; returns where they start."""
        at = self.pos
        if n > self.end - at:
            raise GaninvError(f"the pickle is truncated (it declares {n} bytes where {max(self.end - at, 0)} are left)")
        self.pos = at + n
        return at

    def line(self) -> bytes:
        at = self.pos
        stop = self.data.find(b"\n", at, min(self.end, at + MAX_LINE + 1))
        if stop < 0:
            raise GaninvError(f"the pickle is truncated or has a text argument longer than {MAX_LINE} bytes")
        self.pos = stop + 1
        return bytes(self.data[at:stop])

    def argument(self, name: str, mode: int, width: int, signed: bool) -> tuple[int, str | None]:
        """Read (or skip) the opcode's argument: (its value or size, its text if short)."""
        if mode == _FIXED_INT:
            at = self.take(width)
            return int.from_bytes(self.data[at:at + width], "little"), None
        if mode == _LINES:
            text = self.line() + (b" " + self.line() if name in ("GLOBAL", "INST") else b"")
            if name in ("INT", "LONG") and len(text) > 2 * MAX_INT_BYTES + 2:
                raise GaninvError("the pickle holds an integer too long for a checkpoint")
            return max(len(text), 1), text.decode("latin-1")
        at = self.take(width)
        length = int.from_bytes(self.data[at:at + width], "little", signed=signed)
        if length < 0 or length > self.end - self.pos:
            raise GaninvError(f"the pickle is truncated or lies about a length ({name} declares {length} bytes "
                              f"where {max(self.end - self.pos, 0)} are left)")
        if name in ("LONG1", "LONG4") and length > MAX_INT_BYTES:
            raise GaninvError(f"the pickle holds a {length}-byte integer (not a checkpoint's)")
        at = self.take(length)
        if name in _TEXT_OPS and length <= MAX_TEXT:
            return max(length, 1), bytes(self.data[at:at + length]).decode("utf-8", "replace")
        return max(length, 1), None

    # --- the stack ---------------------------------------------------------------------------------------------

    def pop(self, n: int = 1) -> list[_Node]:
        stack = self.stack
        if n > len(stack) or any(node is _MARK for node in stack[len(stack) - n:]):
            raise GaninvError("the pickle is malformed (it pops more than it pushed)")
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def pop_mark(self) -> list[_Node]:
        stack = self.stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise GaninvError("the pickle is malformed (a MARK is missing)")

    def top(self) -> _Node:
        if not self.stack or self.stack[-1] is _MARK:
            raise GaninvError("the pickle is malformed (an empty stack)")
        return self.stack[-1]

    def charge(self, amount: int) -> None:
        self.work += amount
        if self.work > self.work_limit:
            raise GaninvError("the pickle asks for far more work than its size allows (objects copied or built "
                              "over and over: a decompression bomb)")

    def keys(self, nodes: list[_Node], what: str) -> None:
        for node in nodes:
            if node.kind not in KEY_KINDS:
                raise GaninvError(f"the pickle uses a {node.kind} as a {what} (checkpoints key by names and "
                                  "numbers only)")
        self.charge(len(nodes))


_NONE, _SKIP, _FIXED_INT, _LINES, _PREFIXED = range(5)
_TEXT_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})


def _table() -> dict[int, tuple[str, int, int, bool, str | None]]:
    """opcode byte → (name, argument mode, width, signed length, leaf kind)."""
    table = {}
    for op in pickletools.opcodes:
        arg, name = op.arg, op.name
        if arg is None:
            mode, width, signed = _NONE, 0, False
        elif name in _FIXED:
            mode, width, signed = _FIXED_INT, arg.n, False
        elif arg.n == pickletools.UP_TO_NEWLINE:
            mode, width, signed = _LINES, 0, False
        elif arg.n > 0:
            mode, width, signed = _SKIP, arg.n, False
        else:
            (fmt, width), mode = _LENGTH_PREFIX[arg.n], _PREFIXED
            signed = fmt == "<i"
        table[ord(op.code)] = (name, mode, width, signed, _LEAF_KINDS.get(name))
    return table


_TABLE = _table()
_SIZED_KINDS = frozenset({"str", "bytes", "bytearray"})


def scan_pickle(data, start: int, end: int, *, persistent_ids: bool = False, work_limit: int | None = None) -> int:
    """Dry-run the pickle in ``data`` (bytes, bytearray or an mmap) from offset ``start``, ending at most at ``end``;
    returns the offset just after its STOP. ``GaninvError`` (one line, no path) for anything above."""
    scan = _Scan(data, end, persistent_ids, work_limit if work_limit is not None else 2 * (end - start) + WORK_BASE)
    stack, table, pos, ops = scan.stack, _TABLE, start, 0
    while True:  # runs once per opcode: the common cases are inlined, with the offset in a local
        if pos >= end:
            raise GaninvError("the pickle is truncated (it ends before its STOP)")
        entry = table.get(data[pos])
        if entry is None:
            raise GaninvError(f"byte {data[pos]:#04x} at offset {pos} is no pickle opcode")
        pos += 1
        ops += 1
        if ops > MAX_OPS:
            raise GaninvError(f"the pickle has more than {MAX_OPS:,} opcodes (far more than a checkpoint)")
        name, mode, width, signed, leaf = entry
        value, text = 1, None
        if mode == _SKIP:
            if width > end - pos:
                raise GaninvError("the pickle is truncated (it ends inside an argument)")
            pos += width
        elif mode != _NONE:
            scan.pos = pos
            value, text = scan.argument(name, mode, width, signed)
            pos = scan.pos
        if leaf is not None:  # most opcodes push one object
            if name == "GLOBAL":
                text = _global_text(text)
            elif leaf != "str":
                text = None
            stack.append(_Node(leaf, value if leaf in _SIZED_KINDS else 1, text=text))
        elif name == "STOP":
            if len(stack) != 1 or stack[0] is _MARK:
                raise GaninvError("the pickle is malformed (its STOP leaves no single object)")
            return pos
        else:
            scan.pos = pos
            _step(scan, name, value, text)


def _step(scan: _Scan, name: str, value: int, text: str | None) -> None:
    handler = _HANDLERS.get(name)
    if handler is None:
        raise GaninvError(f"the pickle uses {name}, which no checkpoint needs")
    handler(scan, value, text)


def _container(kind: str):
    def build(scan: _Scan, value: int, text: str | None) -> None:
        items = scan.pop_mark()
        if kind == "dict":
            scan.keys(items[0::2], "dict key")
        elif kind == "frozenset":
            scan.keys(items, "set item")
        size = len(items) // 2 if kind == "dict" else len(items)
        scan.stack.append(_Node(kind, size, weight=sum(i.size for i in items) if kind == "tuple" else 0))
    return build


def _small_tuple(n: int):
    def build(scan: _Scan, value: int, text: str | None) -> None:
        items = scan.pop(n)
        scan.stack.append(_Node("tuple", n, weight=sum(i.size for i in items)))
    return build


def _weight(node: _Node) -> int:
    return node.weight if node.kind == "tuple" else node.size


def _append(scan: _Scan, items: list[_Node]) -> None:
    target = scan.top()
    if target.kind not in ("list", "bytearray") and target.text not in ("builtins.list", "builtins.bytearray"):
        raise GaninvError(f"the pickle appends to a {target.text or target.kind} (only lists take items)")
    target.size += len(items)
    scan.charge(len(items))


def _setitems(scan: _Scan, items: list[_Node]) -> None:
    if len(items) % 2:
        raise GaninvError("the pickle is malformed (a key without a value)")
    target = scan.top()
    if target.kind != "dict" and target.text not in DICT_MAKERS:
        raise GaninvError(f"the pickle assigns items of a {target.text or target.kind} (only dicts take items)")
    scan.keys(items[0::2], "dict key")
    target.size += len(items) // 2


def _additems(scan: _Scan, value: int, text: str | None) -> None:
    items = scan.pop_mark()
    target = scan.top()
    if target.kind != "set":
        raise GaninvError(f"the pickle adds set items to a {target.text or target.kind}")
    scan.keys(items, "set item")
    target.size += len(items)


def _call(scan: _Scan, callable_: _Node, arguments: list[_Node]) -> None:
    """REDUCE, NEWOBJ, OBJ, INST: the callable may touch each argument once, and — unless it is known to return a
    handle (a storage, tensor or record, whatever it was given) — the result may hold that much."""
    work = sum(_weight(a) for a in arguments) + 1
    scan.charge(work)
    size = 1 if callable_.text in HANDLE_MAKERS else work
    scan.stack.append(_Node("object", size, text=callable_.text))


def _memo_put(scan: _Scan, index: int) -> None:
    if index > len(scan.memo) + 1 and index not in scan.memo:  # picklers number memo slots 0, 1, 2, …
        raise GaninvError(f"the pickle stores memo slot {index} out of order (a memory bomb)")
    scan.memo[index] = scan.top()


def _memo_get(scan: _Scan, index: int) -> None:
    if index not in scan.memo:
        raise GaninvError(f"the pickle reads memo slot {index}, which it never stored")
    scan.stack.append(scan.memo[index])


def _int_text(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise GaninvError("the pickle has a memo index that is not a number") from None


def _stack_global(scan: _Scan, value: int, text: str | None) -> None:
    module, name = scan.pop(2)
    if module.kind != "str" or name.kind != "str":
        raise GaninvError("the pickle names a global by something other than two strings")
    scan.stack.append(_Node("global", text=f"{module.text}.{name.text}"))


def _global_text(text: str | None) -> str:
    return (text or "").replace(" ", ".", 1)


def _persistent(scan: _Scan, pops: int) -> None:
    if not scan.persistent_ids:
        raise GaninvError("it is not a pickle ganinv reads (it holds a persistent id, which only torch's own "
                          "containers use: a truncated .pt, or not a checkpoint at all)")
    scan.pop(pops)
    scan.stack.append(_Node("object", text="persistent"))


def _build(scan: _Scan, value: int, text: str | None) -> None:
    (state,) = scan.pop(1)
    target = scan.top()
    scan.charge(_weight(state) + 1)
    target.size += _weight(state)


def _proto(scan: _Scan, value: int, text: str | None) -> None:
    if value > 5:
        raise GaninvError(f"pickle protocol {value} is newer than any Python writes")


def _frame(scan: _Scan, value: int, text: str | None) -> None:
    if value > scan.end - scan.pos:
        raise GaninvError(f"the pickle is truncated (a frame of {value} bytes where {scan.end - scan.pos} are left)")


def _pop(scan: _Scan, value: int, text: str | None) -> None:
    if scan.stack and scan.stack[-1] is _MARK:
        scan.stack.pop()  # POP right after MARK drops the mark, as the unpickler does
    else:
        scan.pop(1)


def _reduce(scan: _Scan, value: int, text: str | None) -> None:  # REDUCE and NEWOBJ: callable, args
    callable_, arguments = scan.pop(2)
    _call(scan, callable_, [arguments])


def _newobj_ex(scan: _Scan, value: int, text: str | None) -> None:
    cls, arguments, kwargs = scan.pop(3)
    _call(scan, cls, [arguments, kwargs])


def _obj(scan: _Scan, value: int, text: str | None) -> None:
    items = scan.pop_mark()
    if not items:
        raise GaninvError("the pickle is malformed (OBJ without a class)")
    _call(scan, items[0], items[1:])


_HANDLERS = {
    "MARK": lambda s, v, t: s.stack.append(_MARK),
    "POP": _pop,
    "POP_MARK": lambda s, v, t: s.pop_mark(),
    "DUP": lambda s, v, t: s.stack.append(s.top()),
    "TUPLE": _container("tuple"), "LIST": _container("list"), "DICT": _container("dict"),
    "FROZENSET": _container("frozenset"),
    "TUPLE1": _small_tuple(1), "TUPLE2": _small_tuple(2), "TUPLE3": _small_tuple(3),
    "APPEND": lambda s, v, t: _append(s, s.pop(1)),
    "APPENDS": lambda s, v, t: _append(s, s.pop_mark()),
    "SETITEM": lambda s, v, t: _setitems(s, s.pop(2)),
    "SETITEMS": lambda s, v, t: _setitems(s, s.pop_mark()),
    "ADDITEMS": _additems,
    "PUT": lambda s, v, t: _memo_put(s, _int_text(t)), "BINPUT": lambda s, v, t: _memo_put(s, v),
    "LONG_BINPUT": lambda s, v, t: _memo_put(s, v), "MEMOIZE": lambda s, v, t: _memo_put(s, len(s.memo)),
    "GET": lambda s, v, t: _memo_get(s, _int_text(t)), "BINGET": lambda s, v, t: _memo_get(s, v),
    "LONG_BINGET": lambda s, v, t: _memo_get(s, v),
    "STACK_GLOBAL": _stack_global,
    "REDUCE": _reduce,
    "BUILD": _build,
    "INST": lambda s, v, t: _call(s, _Node("global", text=_global_text(t)), s.pop_mark()),
    "OBJ": _obj,
    "NEWOBJ": _reduce,
    "NEWOBJ_EX": _newobj_ex,
    "PERSID": lambda s, v, t: _persistent(s, 0),
    "BINPERSID": lambda s, v, t: _persistent(s, 1),
    "PROTO": _proto,
    "FRAME": _frame,
}
