from cobee_django.management.base import TenantCommand
from tests.testapp.models import Department


class Command(TenantCommand):
    def add_arguments(self, parser):
        parser.add_argument("--prefix", default="")

    def handle(self, *args, **options):
        self.stdout.write(f"{options['prefix']}{Department.objects.count()}")
