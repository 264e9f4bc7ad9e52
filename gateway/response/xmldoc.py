"""XML answers and SOAP envelopes read as the plain data the JSON filter works on, and written back.

Why a tree of dicts: scope, masks, related records, aggregates and the allow-list of
gateway.response.answer then apply to XML exactly as to JSON, and the catalogue's field paths
address XML the same way::

    <response><leads><lead id="7"><owner>carol</owner><phone>+33 1 23</phone></lead>...</leads></response>
    {"response": {"leads": {"lead": [{"id": "7", "owner": "carol", "phone": "+33 1 23"}, ...]}}}
    records: ["response.leads.lead[]"]    scope field: owner    mask: phone

How an element reads (namespaces ignored: a name is the element's or attribute's local name):

    the document         {root name: root value}, so paths start at the root (``Envelope.Body...``)
    a leaf               its text ("" when empty); ``xsi:nil="true"`` is null
    children or          a dict: each attribute and each child element under its name; a name that
      attributes           repeats among siblings is a list; text beside attributes is under "#text"
    ``name[]`` in a      every ``name`` child: one, several or none (see :meth:`XmlDocument.shape`)
      declared path

Reading is gateway.response.xmlparse's (defusedxml, no DTD, UTF-8 only); what it cannot read
safely is refused with :class:`XmlRefused`, which the caller turns into a 502 (answers) or a 400
(requests). Comments, processing instructions and ``xsi:`` attributes other than nil are not data:
they are not written back.

:meth:`XmlDocument.dump` is our own serialiser (the client parses exactly what was filtered):
UTF-8, every namespace declared once on the root with the prefix the CRM used for it (so a QName
in text, a SOAP ``faultcode`` say, still resolves); siblings keep their order except that the
repeats of one name are written together.
"""

from __future__ import annotations

from typing import Any

from gateway import fieldpath
from gateway.response.xmlparse import TEXT, XSI, Element, Node, Nodes, XmlRefused, parse

XML_NS = "http://www.w3.org/XML/1998/namespace"  # xml:lang and friends: prefix "xml", never declared
__all__ = ["XmlDocument", "XmlRefused", "load"]


class XmlDocument:
    """A parsed XML body: ``root`` is ``{root name: value}``; edit it in place, then :meth:`dump`."""

    def __init__(self, root: Element, nodes: Nodes, declared: list[tuple[str, str]]):
        self.root = root
        self._nodes = nodes  # id(dict) -> (the dict itself, kept alive so its id is never reused; node)
        self._declared = declared  # (prefix, uri) in document order

    def node(self, value: Element) -> Node:
        entry = self._nodes.get(id(value))
        if entry is None:
            entry = self._nodes[id(value)] = (value, Node())
        return entry[1]

    # --- lists -------------------------------------------------------------------------------

    def shape(self, value: Any, path: fieldpath.Path, *, records: bool = False) -> None:
        """Make ``path`` walk this tree as it walks JSON: a ``name[]`` step reads a single ``name``
        child as a list of one and an absent one as an empty list; an empty (or whitespace-only)
        element on the way, or with ``records`` at the end, is an empty dict. Writing back is
        unchanged by this: a list is written as repeated elements, an empty list as nothing, ``{}``
        as ``<name/>``."""
        if not path or type(value) is not dict:
            return
        (key, walk), rest = path[0], path[1:]
        if key in self.node(value).attributes:  # an attribute is one value, never a list or a record
            return
        container = bool(rest) or records
        if key not in value:
            if walk:
                value[key] = []
            return
        child = value[key]
        if walk:
            items = child if type(child) is list else [child]
            if container:
                items = [{} if _blank(item) else item for item in items]
            value[key] = items
            for item in items:
                self.shape(item, rest, records=records)
            return
        if container and _blank(child):
            child = value[key] = {}
        self.shape(child, rest, records=records)

    # --- writing back ------------------------------------------------------------------------

    def dump(self) -> bytes:
        if len(self.root) != 1:
            raise XmlRefused("nothing of the answer is left to send")
        ((name, value),) = self.root.items()
        if type(value) is list:  # a document has one root element, whatever a path said
            if len(value) != 1:
                raise XmlRefused("nothing of the answer is left to send")
            value = value[0]
        ns = self.node(self.root).children.get(name)
        used: dict[str | None, bool] = {}  # namespace -> whether an attribute uses it
        self._uses(ns, value, used)
        prefixes = self._prefixes(used)
        declarations = "".join(
            f' xmlns:{p}="{_attr(uri)}"' if p else f' xmlns="{_attr(uri)}"'
            for uri, p in prefixes.items()
            if uri != XML_NS
        )
        out = ['<?xml version="1.0" encoding="UTF-8"?>']
        self._write(out, name, ns, value, prefixes, declarations)
        return "".join(out).encode("utf-8")

    def _uses(self, ns: str | None, value: Any, used: dict[str | None, bool]) -> None:
        """The namespaces of what :meth:`_write` will write (an empty list writes nothing)."""
        if type(value) is list:
            for item in value:
                self._uses(ns, item, used)
            return
        used.setdefault(ns, False)
        if value is None:
            used.setdefault(XSI, False)
        elif type(value) is dict:
            node = self.node(value)
            for key, item in value.items():
                if key in node.attributes:
                    if node.attributes[key] is not None and item is not None:
                        used[node.attributes[key]] = True
                elif key != TEXT:
                    self._uses(node.children.get(key), item, used)

    def _prefixes(self, used: dict[str | None, bool]) -> dict[str, str]:
        """Each namespace's prefix: the CRM's where it is free; the default namespace only when no
        element is in no namespace and no attribute uses it (attributes take no default)."""
        prefixes: dict[str, str] = {XML_NS: "xml"}
        taken = {"xml"}
        for prefix, uri in self._declared:
            if uri not in used or uri in prefixes or prefix in taken:
                continue
            if prefix == "" and (None in used or used[uri]):
                continue
            prefixes[uri] = prefix
            taken.add(prefix)
        n = 0
        for used_uri in used:
            if used_uri is None or used_uri in prefixes:
                continue
            prefix = "xsi" if used_uri == XSI and "xsi" not in taken else ""
            while not prefix or prefix in taken:
                n += 1
                prefix = f"ns{n}"
            prefixes[used_uri] = prefix
            taken.add(prefix)
        return prefixes

    def _write(
        self, out: list[str], name: str, ns: str | None, value: Any, prefixes: dict[str, str], declarations: str = ""
    ) -> None:
        tag = _qname(name, ns, prefixes)
        if type(value) is list:
            for item in value:
                self._write(out, name, ns, item, prefixes, declarations)
            return
        if value is None:
            out.append(f'<{tag}{declarations} {prefixes[XSI]}:nil="true"/>')
            return
        if type(value) is not dict:
            text = _scalar(value)
            out.append(f"<{tag}{declarations}>{_text(text)}</{tag}>" if text else f"<{tag}{declarations}/>")
            return
        node = self.node(value)
        attributes = "".join(
            f' {_qname(key, node.attributes[key], prefixes)}="{_attr(_scalar(item))}"'
            for key, item in value.items()
            if key in node.attributes and item is not None
        )
        children = [
            (key, item) for key, item in value.items() if key not in node.attributes and key != TEXT and item != []
        ]
        text = _scalar(value.get(TEXT, ""))
        if not children and not text:
            out.append(f"<{tag}{declarations}{attributes}/>")
            return
        out.append(f"<{tag}{declarations}{attributes}>{_text(text)}")
        for key, item in children:
            self._write(out, key, node.children.get(key), item, prefixes)
        out.append(f"</{tag}>")


def _blank(value: Any) -> bool:
    """An element with nothing but whitespace inside: where an element is expected, an empty one."""
    return type(value) is str and not value.strip()


def _qname(name: str, ns: str | None, prefixes: dict[str, str]) -> str:
    prefix = prefixes.get(ns, "") if ns is not None else ""
    return f"{prefix}:{name}" if prefix else name


def _scalar(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return str(value)
    raise XmlRefused(f"a {type(value).__name__} where XML needs text")


def _text(text: str) -> str:
    # "\r" as a reference: a literal one would be read back as "\n" (end-of-line normalisation)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attr(text: str) -> str:
    return _text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def load(data: bytes) -> XmlDocument:
    """Parse a UTF-8 XML body safely (gateway.response.xmlparse); raises XmlRefused."""
    return XmlDocument(*parse(data))
