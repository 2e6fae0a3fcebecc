"""The session hooks on a plain SQLAlchemy sessionmaker (no Flask-SQLAlchemy), with joined-
table inheritance."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import ForeignKey, Integer, String, create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from cacheplug_flask import CachePlug, instance_tag


class Base(DeclarativeBase):
    pass


class Place(Base):
    __tablename__ = "place"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "place"}  # noqa: RUF012


class Restaurant(Place):
    __tablename__ = "restaurant"
    id: Mapped[int] = mapped_column(ForeignKey("place.id"), primary_key=True)
    serves_pizza: Mapped[bool] = mapped_column(default=False)
    __mapper_args__ = {"polymorphic_identity": "restaurant"}  # noqa: RUF012


def test_a_plain_sessionmaker_and_joined_inheritance(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plain.sqlite3'}")
    Base.metadata.create_all(engine)
    Session = sessionmaker(engine)
    app = Flask("plain-sqlalchemy")
    ext = CachePlug(app, sqlalchemy=Session)
    with Session() as session:
        session.add(Restaurant(id=1, name="luigi", serves_pizza=True))
        session.commit()

    def page() -> str:
        def render() -> str:
            with Session() as session:
                found = session.get(Restaurant, 1)
                assert found is not None
                return f"{found.name}:{found.serves_pizza}"

        return ext.get_or_load("r1", render, tags=[instance_tag(Restaurant, 1)])

    with app.app_context():
        assert page() == "luigi:True"
        with Session() as session:  # the parent table, rows unknown
            session.execute(update(Place).where(Place.name == "luigi").values(name="mario"))
            session.commit()
        assert page() == "mario:True"
        with Session() as session:  # an instance change, through the ORM
            found = session.get(Restaurant, 1)
            assert found is not None
            found.serves_pizza = False
            session.commit()
        assert page() == "mario:False"
        with Session() as session:
            session.execute(update(Restaurant).values(serves_pizza=True))
            session.rollback()
        assert page() == "mario:False"
