"""Reading an XML body safely into the dict tree gateway.response.xmldoc describes.

An ElementTree parser target (:class:`_Builder`) builds plain dicts, lists and strings as each
element ends; what a dict cannot say (which keys were attributes, the namespace of each name) goes
into a :class:`Node` beside it. The parser is defusedxml's with ``forbid_dtd``: a DTD is refused
before any entity is declared, so there is nothing to expand (billion laughs) and nothing to fetch
(external entities, external DTDs, parameter entities). Refused too, with :class:`XmlRefused`:
bytes that are not UTF-8 or a declared encoding other than UTF-8, text between child elements,
an attribute and a child (or two children) with one local name in different roles or namespaces,
nesting deeper than MAX_DEPTH. Comments and processing instructions are not data: dropped.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from xml.etree.ElementTree import ParseError

# No stubs until types-defusedxml joins the test extra and constraints.txt; then mypy flags this as unused.
from defusedxml.ElementTree import DefusedXMLParser

XSI = "http://www.w3.org/2001/XMLSchema-instance"
TEXT = "#text"  # not a field path segment: the text of an element with attributes is not addressable
MAX_DEPTH = 64
_ENCODING = re.compile(r"""<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")


# An element with children or attributes, as a dict: each attribute and child under its name.
Element = dict[str, Any]
Nodes = dict[int, tuple[Element, "Node"]]  # id(element) -> (the element, kept alive so its id is not reused; its Node)


class XmlRefused(Exception):
    """A body the gateway will not read (the message says why)."""


@dataclasses.dataclass(slots=True)
class Node:
    """What a dict cannot say about the element it stands for: which keys were attributes, and
    the namespace of each attribute and child name."""

    attributes: dict[str, str | None] = dataclasses.field(default_factory=dict)
    children: dict[str, str | None] = dataclasses.field(default_factory=dict)


def _split(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        return uri, local
    return None, name


class _Frame:
    __slots__ = ("attrib", "children", "name", "ns", "text")

    def __init__(self, name: str, ns: str | None, attrib: dict[str, str]):
        self.name, self.ns, self.attrib = name, ns, attrib
        self.children: list[tuple[str, str | None, Any]] = []
        self.text: list[str] = []


class _Builder:
    """An ElementTree parser target that builds the dict tree as each element ends."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.nodes: Nodes = {}
        self.declared: list[tuple[str, str]] = []
        self.root: Element | None = None

    def start_ns(self, prefix: str, uri: str) -> None:
        self.declared.append((prefix or "", uri))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise XmlRefused(f"elements nested deeper than {MAX_DEPTH}")
        ns, name = _split(tag)
        self.stack.append(_Frame(name, ns, attrib))

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text.append(text)

    def end(self, tag: str) -> None:
        frame = self.stack.pop()
        value = self._value(frame)
        if self.stack:
            self.stack[-1].children.append((frame.name, frame.ns, value))
        else:
            self.root = {frame.name: value}
            self.nodes[id(self.root)] = (self.root, Node(children={frame.name: frame.ns}))

    def close(self) -> Element:
        if self.root is None:
            raise XmlRefused("no root element")
        return self.root

    def _value(self, frame: _Frame) -> Any:
        where = f"<{frame.name}>"
        node, nil = Node(), False
        attributes: dict[str, str] = {}
        for key, text in frame.attrib.items():
            ns, name = _split(key)
            if ns == XSI:
                nil = nil or (name == "nil" and text.strip() in ("true", "1"))
                continue
            if name in attributes:
                raise XmlRefused(f"{where} has two attributes named {name!r}")
            attributes[name], node.attributes[name] = text, ns
        text = "".join(frame.text)
        if frame.children and text.strip():
            raise XmlRefused(f"{where} mixes text with child elements")
        if nil:
            if text.strip() or frame.children or attributes:
                raise XmlRefused(f"{where} is nil but has content")
            return None
        if not frame.children and not attributes:
            return text
        value: dict[str, Any] = dict(attributes)
        for name, ns, child in frame.children:
            if name in attributes:
                raise XmlRefused(f"{where} has an attribute and a child element both named {name!r}")
            if name not in value:
                value[name], node.children[name] = child, ns
                continue
            if node.children[name] != ns:
                raise XmlRefused(f"{where} has children named {name!r} in different namespaces")
            if type(value[name]) is list:
                value[name].append(child)
            else:
                value[name] = [value[name], child]
        if not frame.children and text.strip():
            value[TEXT] = text
        self.nodes[id(value)] = (value, node)
        return value


def parse(data: bytes) -> tuple[Element, Nodes, list[tuple[str, str]]]:
    """(root, nodes, declared namespaces) of a UTF-8 XML body parsed safely; raises XmlRefused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlRefused(f"not UTF-8: {exc}") from None
    declaration = _ENCODING.match(text.lstrip("\ufeff"))
    if declaration and declaration.group(1).strip().lower() not in ("utf-8", "utf8"):
        raise XmlRefused(f"declared encoding {declaration.group(1)!r}: only UTF-8 is read")
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        parser.close()  # ends the document: calls builder.close(), which refuses one without a root
    except (ParseError, ValueError) as exc:  # defusedxml's DTDForbidden & co. are ValueErrors
        raise XmlRefused(f"{type(exc).__name__}: {exc}") from None
    return builder.close(), builder.nodes, builder.declared
