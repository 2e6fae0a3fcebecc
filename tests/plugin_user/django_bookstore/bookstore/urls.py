from django.urls import path

from bookstore.catalog import bestsellers_page

urlpatterns = [path("bestsellers/", bestsellers_page)]
