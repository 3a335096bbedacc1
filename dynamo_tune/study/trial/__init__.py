"""One trial: how it is measured (`objective`), what it stores (`outcome`, `attr_keys`,
`artifacts`, `runner`), and how a stored trial is read back (`record`, `selection`).

Imports `spec` only.
"""
