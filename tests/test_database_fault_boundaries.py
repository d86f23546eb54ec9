"""What the 503 mapping must never swallow: integrity, programming and data errors stay what they are
whatever SQLSTATE their driver error carries (a duplicate key is not an outage, a row-level security
refusal is not a retry), and only the fault classes become 503s."""

from __future__ import annotations

import pytest
from django.db import utils

from cobee_django.db.faults import DatabaseFault, _classify


class DriverError(Exception):
    def __init__(self, sqlstate: str, message: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(kind: type[utils.Error], sqlstate: str, message: str = "") -> utils.Error:
    error = kind(message)
    error.__cause__ = DriverError(sqlstate, message)
    return error


# SQLSTATEs that are faults when an OperationalError carries them.
FAULT_STATES = ["08006", "08001", "57P01", "57P03", "53300", "57014", "55P03"]


@pytest.mark.parametrize("sqlstate", FAULT_STATES)
@pytest.mark.parametrize(
    "kind", [utils.IntegrityError, utils.ProgrammingError, utils.DataError, utils.NotSupportedError]
)
def test_errors_outside_the_fault_classes_are_never_faults(kind, sqlstate):
    assert _classify(wrapped(kind, sqlstate)) is None


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("42501", 'new row violates row-level security policy for table "employee"'),
        ("22P02", "invalid input syntax for type uuid"),
        ("23505", "duplicate key value violates unique constraint"),
        ("XX000", "some internal error"),
        ("40001", "could not serialize access due to concurrent update"),
        ("42P01", 'relation "x" does not exist'),
    ],
)
@pytest.mark.parametrize("kind", [utils.OperationalError, utils.InternalError])
def test_tenant_refusals_and_bugs_are_not_faults_even_in_a_fault_class(kind, sqlstate, message):
    assert _classify(wrapped(kind, sqlstate, message)) is None


@pytest.mark.parametrize(
    ("sqlstate", "fault"), [("08006", DatabaseFault.UNREACHABLE), ("57014", DatabaseFault.TIMEOUT)]
)
def test_the_fault_states_in_an_operational_error_are_faults(sqlstate, fault):
    assert _classify(wrapped(utils.OperationalError, sqlstate)) is fault
