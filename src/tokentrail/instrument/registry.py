"""Installing and removing patches: `instrument()`, `uninstrument()`, `wrap_client()`.

Patches are remembered with what they replaced, so `uninstrument()` puts back exactly the
attribute that was there (or removes ours when the attribute was inherited). Instrumenting an
SDK twice is a no-op; a wrapper that another library has wrapped in turn cannot be taken out
of the chain and is switched to pass-through instead.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from tokentrail.core import ValidationError
from tokentrail.instrument.engine import Patch, Plugin, Switch, is_wrapper, wrap_method
from tokentrail.tracking.guard import guard

logger = logging.getLogger("tokentrail")
_MISSING = object()
# other names `instrument()` accepts for a plug-in (SDK package names, provider names)
ALIASES: dict[str, str] = {
    "claude": "anthropic",
    "google": "gemini",
    "google-genai": "gemini",
    "google_genai": "gemini",
    "genai": "gemini",
    "vertexai": "gemini",
    "boto3": "bedrock",
    "botocore": "bedrock",
    "aws": "bedrock",
    "aws.bedrock": "bedrock",
    "bedrock-runtime": "bedrock",
}


@dataclass(slots=True)
class Installed:
    """One applied patch and what it replaced."""

    owner_ref: Any  # the owner (a class) or a weak reference to it (a client's object)
    attr: str
    previous: Any  # the attribute in the owner's own __dict__ before, or _MISSING
    installed: Any
    switch: Switch

    @property
    def owner(self) -> Any:
        return self.owner_ref() if isinstance(self.owner_ref, weakref.ref) else self.owner_ref

    def restore(self) -> None:
        self.switch.on = False
        owner = self.owner
        if owner is None:
            return  # the client is gone
        current = _own_attr(owner, self.attr)
        if current is not self.installed:
            return  # replaced after us: our wrapper stays in the chain, switched off
        if self.previous is _MISSING:
            delattr(owner, self.attr)
        else:
            setattr(owner, self.attr, self.previous)


def _own_attr(owner: Any, attr: str) -> Any:
    namespace = getattr(owner, "__dict__", None)
    if namespace is None:
        return _MISSING
    return namespace.get(attr, _MISSING)


def _install(plugin: Plugin, patch: Patch) -> Installed | None:
    owner, attr = patch.owner, patch.attr
    previous = _own_attr(owner, attr)
    current: Any = getattr(owner, attr, _MISSING)
    if current is _MISSING:
        logger.debug("tokentrail: %r has no attribute %s; not patched", owner, attr)
        return None
    bound_to = None if isinstance(owner, type) else owner
    # already ours: on a class, also when inherited; on one client's object, only its own
    # attribute (a class-level wrapper below it passes the call through)
    if is_wrapper(current if bound_to is None else previous):
        return None
    switch = Switch()
    installed: Any
    if patch.endpoint is not None:
        installed = wrap_method(current, patch.endpoint, plugin, switch, bound_to)
    elif patch.hook is not None:
        installed = patch.hook(current)
        installed.__tokentrail_original__ = current
    else:
        return None
    setattr(owner, attr, installed)
    owner_ref: Any = owner
    if bound_to is not None:
        try:
            owner_ref = weakref.ref(owner)
        except TypeError:
            owner_ref = owner
    return Installed(owner_ref, attr, previous, installed, switch)


class Registry:
    """The known plug-ins and what each has installed."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._plugins: dict[str, Plugin] = {}
        self._global: dict[str, list[Installed]] = {}
        self._clients: list[Installed] = []

    def register(self, plugin: Plugin) -> None:
        """Add (or replace) a provider plug-in under `plugin.name`."""
        if not isinstance(plugin, Plugin) or not plugin.name:
            raise ValidationError("plugin", "must be a tokentrail.instrument.Plugin with a name")
        with self._lock:
            self._plugins[plugin.name] = plugin

    def plugin(self, name: str) -> Plugin:
        found = self._plugins.get(name)
        if found is None and isinstance(name, str):
            found = self._plugins.get(ALIASES.get(name.strip().lower(), name.strip().lower()))
        if found is None:
            known = ", ".join(sorted(self._plugins)) or "none"
            raise ValidationError("instrument", f"{name!r} is not a supported SDK (known: {known})")
        return found

    @property
    def names(self) -> list[str]:
        return sorted(self._plugins)

    def instrumented(self) -> list[str]:
        return sorted(self._global)

    def instrument(self, names: tuple[str, ...], options: dict[str, Any]) -> list[str]:
        """Patch the named SDKs (every installed one when `names` is empty); returns the names
        now instrumented. An SDK that is named but not installed is skipped with a warning."""
        with self._lock:
            chosen = [self.plugin(n) for n in names] if names else [self._plugins[n] for n in self.names]
            chosen = list(dict.fromkeys(chosen))  # two names of one plug-in
            done: list[str] = []
            for plugin in chosen:
                plugin.configure(**options)
                if plugin.name in self._global:
                    done.append(plugin.name)
                    continue
                if not plugin.available():
                    if names:
                        logger.warning("tokentrail: %s is not installed; not instrumented", plugin.name)
                    continue
                patches: list[Patch] = []
                with guard(f"instrument.{plugin.name}.patches"):  # a broken SDK install never breaks the host
                    patches = plugin.patches()
                installed = [i for i in (_install(plugin, p) for p in patches) if i is not None]
                self._global[plugin.name] = installed
                done.append(plugin.name)
            return done

    def uninstrument(self, names: tuple[str, ...]) -> None:
        """Remove the named SDKs' patches (all, and every wrapped client, when none is named)."""
        with self._lock:
            targets = (
                [ALIASES.get(n.strip().lower(), n.strip().lower()) for n in names] if names else list(self._global)
            )
            for name in targets:
                for item in reversed(self._global.pop(name, [])):
                    item.restore()
            if not names:
                for item in reversed(self._clients):
                    item.restore()
                self._clients.clear()

    def wrap_client(self, name: str, client: Any, options: dict[str, Any]) -> Any:
        """Patch one client's objects; returns the same client."""
        with self._lock:
            plugin = self.plugin(name)
            patches = plugin.client_patches(client, **options)
            for patch in patches:
                item = _install(plugin, patch)
                if item is not None:
                    self._clients.append(item)
            self._clients = [i for i in self._clients if i.owner is not None]
            return client


REGISTRY = Registry()

__all__ = ["ALIASES", "REGISTRY", "Installed", "Registry"]
