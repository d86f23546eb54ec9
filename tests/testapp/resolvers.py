import uuid

FIXED = uuid.UUID("00000000-0000-4000-8000-000000000001")


def fixed(corporation_id):
    return [str(FIXED)]


def broken(corporation_id):
    return None


def garbage(corporation_id):
    return ["not-a-uuid"]
