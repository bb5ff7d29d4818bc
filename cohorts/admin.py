from django.contrib import admin
from django.db.models import Count, Q

from .models import Cohort, CohortMembership


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "pricing_model", "status", "member_count", "cycle_start"]
    list_filter = ["status", "pricing_model"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("memberships", filter=Q(memberships__left_at__isnull=True)))
        )

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members


@admin.register(CohortMembership)
class CohortMembershipAdmin(admin.ModelAdmin):
    list_display = ["account", "cohort", "joined_at", "left_at", "reason"]
    list_filter = ["cohort"]
    search_fields = ["=account__acct_id", "account__name"]
    list_select_related = ["account", "cohort"]
    date_hierarchy = "joined_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
