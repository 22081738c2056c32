"""The console's one style sheet, served at /console.css (CSP `style-src 'self'`)."""

from __future__ import annotations

from typing import Final

__all__ = ["CSS"]

CSS: Final = b"""\
:root { color-scheme: light; font-family: system-ui, sans-serif; line-height: 1.4; }
body { margin: 0; color: #1b1f24; background: #f6f8fa; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1; }
header { background: #24292f; color: #fff; padding: .5rem 1rem; }
header a { color: #fff; margin-right: 1rem; }
header form { display: inline; }
main { padding: 1rem; max-width: 80rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #eaeef2; overflow-wrap: normal; }
thead th { white-space: nowrap; }
pre { background: #fff; border: 1px solid #d0d7de; padding: .5rem; overflow: auto;
      white-space: pre-wrap; overflow-wrap: anywhere; }
label { display: inline-block; margin: .25rem .5rem .25rem 0; }
input, textarea, button { font: inherit; }
textarea { width: 100%; font-family: ui-monospace, monospace; }
:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
.ok { color: #1a7f37; font-weight: bold; }
.bad { color: #cf222e; font-weight: bold; }
.note { color: #57606a; }
.error { border-left: 4px solid #cf222e; background: #fff; padding: .5rem; }
"""
