"""The plugin manager: finds every plugin through the ``ledger`` entry-point group.

Built-in regimes and provinces (``plugins/national``, ``plugins/hunan``, ``plugins/chongqing``)
are registered by this project's own ``pyproject.toml`` exactly as a third-party distribution
registers its province, so there is one way in (ARCHITECTURE.md rule 4). ``LEDGER_DISABLE_PLUGINS``
blocks plugins by name before they load; ``check_pending()`` then fails loudly on any ``ledger_*``
function that matches no hook (a misspelt hook would otherwise be ignored silently).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

import pluggy

from ledger import hookspecs
from ledger.errors import PluginError
from ledger.jurisdictions import NATIONAL, Jurisdiction

ENTRY_POINT_GROUP = "ledger"
DISABLE_ENV = "LEDGER_DISABLE_PLUGINS"


def disabled_plugins() -> frozenset[str]:
    """Names listed in ``LEDGER_DISABLE_PLUGINS`` (comma-separated)."""
    return frozenset(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())


def make_plugin_manager(
    *, extra: tuple[tuple[str, object], ...] = (), disabled: frozenset[str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with every installed plugin (and ``extra`` ones, for tests) loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in sorted(disabled_plugins() if disabled is None else disabled):
        pm.set_blocked(name)
    for name, plugin in extra:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        msg = f"plugin {e.plugin!r} does not fit the ledger's hooks: {e}"
        raise PluginError(msg) from e
    except (ImportError, AttributeError) as e:
        msg = f"a plugin failed to load: {e}"
        raise PluginError(msg) from e
    return pm


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    return make_plugin_manager()


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]
    contributes: dict[str, tuple[str, ...]]
    """What it adds, by hook: jurisdiction codes, rule ids, report and projection names."""


_LISTED = {
    "ledger_jurisdictions": "code",
    "ledger_rules": "id",
    "ledger_reports": "name",
    "ledger_projections": "name",
    "ledger_deadlines": "name",
}


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with its version and the hooks it implements, sorted by name."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist: Any = dists.get(id(plugin))
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        contributes = {
            hook.removeprefix("ledger_"): tuple(sorted(str(getattr(x, attr)) for x in getattr(plugin, hook)() or ()))
            for hook, attr in _LISTED.items()
            if hook in hooks
        }
        out.append(
            PluginInfo(
                name=name,
                version=getattr(plugin, "__version__", None) or (dist.version if dist else None),
                distribution=dist.metadata["name"] if dist else None,
                hooks=hooks,
                contributes=contributes,
            )
        )
    return sorted(out, key=lambda p: p.name)


def jurisdictions(pm: pluggy.PluginManager) -> list[Jurisdiction]:
    """All jurisdictions, ``national`` first, then provinces by code; codes must be unique."""
    found: dict[str, Jurisdiction] = {NATIONAL: Jurisdiction(NATIONAL, "全国")}
    for contributed in pm.hook.ledger_jurisdictions():
        for j in contributed or ():
            if j.code in found and found[j.code] != j:
                msg = f"two plugins claim the jurisdiction {j.code!r}"
                raise PluginError(msg)
            found[j.code] = j
    return [found[NATIONAL], *sorted(v for k, v in found.items() if k != NATIONAL)]


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
