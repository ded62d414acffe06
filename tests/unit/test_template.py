"""Templates: parsed once, filled per recipient, values inserted verbatim."""

from __future__ import annotations

import pytest

from engine.intake.template import MissingVariable, Template


@pytest.mark.parametrize(
    ("body", "variables"),
    [
        ("plain text", ()),
        ("", ()),
        ("Hello #{name}", ("name",)),
        ("#{name}", ("name",)),
        ("#{a}#{b}", ("a", "b")),
        ("#{고객명}님, 주문번호 #{order_no}", ("고객명", "order_no")),
        ("#{b} #{a} #{b} #{a}", ("b", "a")),  # distinct, in order of first appearance
        ("#{Name_2}", ("Name_2",)),
        # not placeholders: literal text
        ("#{", ()),
        ("#{name", ()),
        ("#{}", ()),
        ("#{two words}", ()),
        ("#{na-me}", ()),
        ("{name} ${name} #name", ()),
        ("price: 10#{", ()),
        # the innermost well-formed placeholder counts
        ("#{#{name}}", ("name",)),
        ("##{name}", ("name",)),
    ],
)
def test_parse_finds_the_variables(body: str, variables: tuple[str, ...]) -> None:
    # Given a message body
    # When it is parsed
    template = Template.parse(body)
    # Then its variables are the distinct #{name} placeholders, in order of first appearance
    assert template.variables == variables
    assert template.has_variables is bool(variables)
    assert template.body == body


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("plain text", (), "plain text"),
        ("Hello #{name}", ("Kim",), "Hello Kim"),
        ("#{name}", ("Kim",), "Kim"),
        ("#{a}#{b}", ("1", "2"), "12"),
        ("#{고객명}님, 주문번호 #{order_no}입니다.", ("홍길동", "A-17"), "홍길동님, 주문번호 A-17입니다."),
        ("#{b} #{a} #{b}", ("B", "A"), "B A B"),
        ("#{ #{x} #{", ("X",), "#{ X #{"),
        ("#{#{name}}", ("Kim",), "#{Kim}"),
        ("Hi #{name}!", ("",), "Hi !"),
    ],
)
def test_render_fills_values_in_variable_order(body: str, values: tuple[str, ...], expected: str) -> None:
    # Given a parsed template and values in the order of its variables
    # When it is rendered
    # Then each placeholder is replaced by its value and the rest is kept as written
    assert Template.parse(body).render(values) == expected


def test_values_are_inserted_verbatim() -> None:
    # Given values that themselves look like placeholders or format strings
    template = Template.parse("#{a} / #{b}")
    # When the template is rendered
    rendered = template.render(["#{b}", "{0} %s \\1"])
    # Then they stay literal: no recursive substitution
    assert rendered == "#{b} / {0} %s \\1"


def test_render_accepts_any_sequence() -> None:
    # Given values as a list rather than a tuple
    # When the template is rendered
    # Then the result is the same
    assert Template.parse("#{a}-#{b}").render(["1", "2"]) == "1-2"


@pytest.mark.parametrize(("values", "got"), [((), 0), (("1",), 1), (("1", "2", "3"), 3)])
def test_render_refuses_the_wrong_number_of_values(values: tuple[str, ...], got: int) -> None:
    # Given a template of two variables
    template = Template.parse("#{a} #{b}")
    # When it is rendered with too few or too many values
    # Then ValueError says how many it takes
    with pytest.raises(ValueError, match=rf"template takes 2 values \(a, b\), got {got}"):
        template.render(values)


def test_render_mapping_takes_values_by_name() -> None:
    # Given a template and a mapping with every variable (and one more)
    template = Template.parse("#{고객명}님 #{code}")
    mapping = {"code": "1234", "고객명": "홍길동", "unused": "x"}
    # When it is rendered from the mapping
    # Then the values go by name, extra names are ignored
    assert template.render_mapping(mapping) == "홍길동님 1234"
    assert template.values_from(mapping) == ("홍길동", "1234")


@pytest.mark.parametrize(
    ("body", "expected"),
    [("no variables", ()), ("#{only}", ("v",)), ("#{only} #{only}", ("v",))],
)
def test_values_from_always_gives_a_tuple(body: str, expected: tuple[str, ...]) -> None:
    # Given a template of zero or one variable
    # When its values are taken from a mapping
    # Then they come as a tuple all the same
    assert Template.parse(body).values_from({"only": "v"}) == expected


@pytest.mark.parametrize("method", ["render_mapping", "values_from"])
def test_missing_variable_is_named(method: str) -> None:
    # Given a template and a mapping lacking one of its variables
    template = Template.parse("#{name}: #{code}")
    # When the mapping is used
    with pytest.raises(MissingVariable) as caught:
        getattr(template, method)({"name": "Kim"})
    # Then the error names the missing variable and is both a KeyError and a ValueError
    assert caught.value.name == "code"
    assert str(caught.value) == "no value for template variable 'code'"
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, ValueError)


def test_template_without_variables_renders_its_body() -> None:
    # Given a body with no placeholder
    template = Template.parse("same text for everyone")
    # When it is rendered
    # Then every recipient gets the body itself
    assert not template.has_variables
    assert template.render(()) == "same text for everyone"
    assert template.render_mapping({}) == "same text for everyone"


def test_templates_compare_by_body() -> None:
    # Given two parses of the same body
    # Then they are equal and hash alike
    assert Template.parse("#{a}") == Template.parse("#{a}")
    assert hash(Template.parse("#{a}")) == hash(Template.parse("#{a}"))
    assert Template.parse("#{a}") != Template.parse("#{b}")
    assert repr(Template.parse("#{a}")) == "Template('#{a}')"
