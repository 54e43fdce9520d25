import pytest
from tests.scim_helpers import *  # noqa
from tests.scim_helpers import scim, _clear_cache  # noqa
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
@pytest.mark.django_db
def test_x(scim):
    body = user_payload(displayName="Alice P. Liddell", schemas=[USER_SCHEMA, ENTERPRISE_URN],
        **{ENTERPRISE_URN: {"employeeNumber": "701984", "manager": "42"}})
    r = scim.post("/Users", body); print(r.content)
