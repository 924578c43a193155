"""Storage: the only Python package that imports the Rust core (`pivot._native`).

Every rule about bytes on disk has its one home here: `files` (durable writes, stale temps,
tree removal), `links` (LinkMode), `cache`, `index` (stat-index saves), `lock`, `runcache` and
`pvt`. Submodules are imported where they are used, so importing this package costs nothing.
"""
