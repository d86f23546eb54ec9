"""Every lookup path through the zoo, generated from the models' metadata.

A path is a chain of one or two relation hops (forward or reverse: foreign keys, one-to-one fields
and parent links, many-to-many fields, ``ForeignObject`` and ``GenericRelation``) ending in a
``*tag`` field of the last model. Generic foreign keys cannot be followed in a lookup (Django
refuses them); they are reached through ``prefetch_related()`` and attribute access instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.db.models import CharField, Model

from cobee_django.company_field import is_tenant_model


@dataclass(frozen=True)
class Hop:
    name: str
    target: type[Model]
    many: bool  # more than one row may be reached (reverse foreign key, many-to-many, generic relation)
    selectable: bool  # select_related() can follow it (forward foreign key or one-to-one, reverse one-to-one)
    kind: str  # the field's class: ForeignKey, ManyToOneRel, GenericRelation, GenericRel...


@dataclass(frozen=True)
class Path:
    model: type[Model]
    hops: tuple[Hop, ...]
    leaf: str

    @property
    def relation(self) -> str:
        return "__".join(hop.name for hop in self.hops)

    @property
    def lookup(self) -> str:
        return f"{self.relation}__{self.leaf}"

    @property
    def end(self) -> type[Model]:
        return self.hops[-1].target

    @property
    def touches_tenant(self) -> bool:
        """True when the query joins (or starts from) a tenant model's table."""
        return is_tenant_model(self.model) or any(is_tenant_model(hop.target) for hop in self.hops)

    @property
    def many(self) -> bool:
        return any(hop.many for hop in self.hops)

    def __str__(self) -> str:
        return f"{self.model.__name__}.{self.lookup}"


def zoo_models() -> list[type[Model]]:
    return list(apps.get_app_config("zoo").get_models())


def leaves(model: type[Model]) -> list[str]:
    """The model's ``tag``-like text fields: whose values say which company a row belongs to."""
    return sorted(f.name for f in model._meta.get_fields() if isinstance(f, CharField) and f.name.endswith("tag"))


def hops(model: type[Model]) -> list[Hop]:
    """Every relation a lookup can follow from ``model`` into another zoo model."""
    zoo = set(zoo_models())
    found = []
    for field in model._meta.get_fields():
        if not field.is_relation or isinstance(field, GenericForeignKey):
            continue
        target = field.related_model
        if target not in zoo:
            continue  # the registry (Company) and ContentType are not what the zoo is about
        many = bool(field.one_to_many or field.many_to_many)
        selectable = bool(field.many_to_one or field.one_to_one) and (field.concrete or field.one_to_one)
        found.append(Hop(field.name, target, many, selectable, type(field).__name__))
    return sorted(found, key=lambda hop: hop.name)


def every_path(max_hops: int = 2) -> list[Path]:
    """Every path of 1..``max_hops`` hops from every zoo model, times every leaf of its end."""
    paths = []
    for model in zoo_models():
        chains: list[tuple[Hop, ...]] = [(hop,) for hop in hops(model)]
        frontier = chains
        for _ in range(max_hops - 1):
            frontier = [(*chain, hop) for chain in frontier for hop in hops(chain[-1].target)]
            chains = chains + frontier
        for chain in chains:
            for leaf in leaves(chain[-1].target):
                paths.append(Path(model, chain, leaf))
    return paths
