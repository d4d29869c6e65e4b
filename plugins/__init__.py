"""Built-in plugins: one package per regime or province, each registered through the ``ledger``
entry-point group exactly as a third-party province would be (see docs/plugins.md)."""
