"""The @resultN tokenizer: references only where SQL has them, per engine's quoting rules."""
from __future__ import annotations

import pytest

from shared.extract import find_references
from shared.extract.tokenizer import (first_word, rewrite_references, split_leading_with, statement_count,
                                      strip_statement, tokenize)


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM @result1 u", [1]),
    ("select * from @RESULT1 join @Result2 r on 1=1", [1, 2]),
    ("select * from @result12", [12]),
    ("select * from @result1, @result12, @result1", [1, 12, 1]),
    ("select '@result1' from t", []),
    ("select 'it''s @result1' from t", []),
    ("select E'\\' @result1' from t", []),
    ("select $$ @result1 $$, $tag$ @result2 $tag$ from @result3", [3]),
    ("select 1 -- @result1\nfrom @result2", [2]),
    ("select /* @result1 /* nested @result2 */ still @result3 */ 1 from @result4", [4]),
    ('select "@result1" from t', []),
    ("select `@result1` from t", []),
    ("select [@result1] from t", []),
    ("select x@result1, @@result2, @result3x from t", []),
    ("select * from (select * from @result2) s join @result1 f on s.id=f.id", [2, 1]),
    ("select * from @result1\n", [1]),
    ("select * from @result1;", [1]),
    ("select * from @result1.col", [1]),
])
def test_find_references_sees_only_real_references(sql: str, expected: list[int]) -> None:
    assert find_references(sql) == expected


def test_mysql_backslash_escapes_and_hash_comments_are_respected() -> None:
    sql = "select 'a\\' @result1 ', \"@result2\" # @result3\nfrom @result4"
    assert find_references(sql, flavor="mysql") == [4]


def test_mysql_needs_a_space_after_double_dash() -> None:
    assert find_references("select 1--@result1\n", flavor="mysql") == [1]
    assert find_references("select 1-- @result1\n", flavor="mysql") == []


def test_postgresql_brackets_are_not_identifiers() -> None:
    assert find_references("select arr[1] from @result1", flavor="postgresql") == [1]


def test_unterminated_string_hides_the_rest() -> None:
    assert find_references("select 'oops @result1") == []


def test_tokens_concatenate_back_to_the_input() -> None:
    sql = "WITH x AS (select 'a', \"b\", $q$c$q$ /* d */ -- e\n from @result1) select * from x;"
    assert "".join(t.text for t in tokenize(sql)) == sql


def test_rewrite_replaces_only_references() -> None:
    sql = "select '@result1', u.* from @result1 u join @result12 v on u.id = v.id"
    out = rewrite_references(sql, {1: "t1", 12: '"t12"'})
    assert out == "select '@result1', u.* from t1 u join \"t12\" v on u.id = v.id"


def test_statement_helpers() -> None:
    assert statement_count("select 1;") == 1
    assert statement_count("select 1; delete from t") == 2
    assert statement_count("select ';' ; -- done") == 1
    assert strip_statement("select 1 ; -- trailing\n ;") == "select 1"
    assert first_word("/* hi */ (select 1)") .startswith("(")
    assert first_word("-- c\n Update t set a=1") == "update"


def test_split_leading_with_finds_recursive() -> None:
    assert split_leading_with("select 1") is None
    head, rest = split_leading_with("/* c */ WITH RECURSIVE r AS (select 1) select * from r")
    assert head.endswith("RECURSIVE") and rest.strip().startswith("r AS")


# -- agreement with the engines' lexers (issue 13: a tokenizer that disagrees can be fooled) --------

def test_a_character_above_u_ffff_glued_to_dollars_is_an_identifier_on_postgresql() -> None:
    sql = "SELECT 1 AS a\U0001F600$$; COMMIT; DELETE FROM victim; SELECT 1 AS b\U0001F600$$"
    for flavor in ("postgresql", "generic"):
        assert statement_count(sql, flavor=flavor) == 4
        assert [t.text for t in tokenize(sql, flavor=flavor) if t.kind == "ident"][2] == "a\U0001F600$$"


def test_dollar_inside_an_identifier_does_not_open_a_quote() -> None:
    assert statement_count("SELECT 1 AS x$$; SELECT 2 AS y$$", flavor="postgresql") == 2
    assert find_references("SELECT é$$ FROM @result1", flavor="postgresql") == [1]


def test_mysql_identifiers_may_start_with_a_dollar_or_a_digit() -> None:
    texts = [t.text for t in tokenize("select $x, 1abc from t", flavor="mysql") if t.kind == "ident"]
    assert texts == ["select", "$x", "1abc", "from", "t"]


@pytest.mark.parametrize("sql", ["/*!CALL proc((*/ SELECT 1 /*!)*/)", "/*!50100 CALL proc((*/ SELECT 1 /*!)*/)",
                                 "/*M!CALL proc((*/ SELECT 1 /*M!)*/)", "/*M!100000 DELETE FROM t */"])
def test_mysql_executable_comments_are_code(sql: str) -> None:
    assert first_word(sql, flavor="mysql") in ("call", "delete")


def test_mysql_executable_comment_hides_a_second_statement_only_from_other_flavors() -> None:
    sql = "SELECT 1 /*!; DELETE FROM t */"
    assert statement_count(sql, flavor="mysql") == 2
    assert statement_count(sql, flavor="postgresql") == 1
    assert find_references("select /*! @result1 */ 1", flavor="mysql") == [1]


@pytest.mark.parametrize("sql, target", [
    ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "OUTFILE"),
    ("SELECT 1 INTO DUMPFILE '/tmp/x'", "DUMPFILE"),
    ("SELECT 1 INTO @v", "@variable"),
    ("SELECT 1 /*!INTO*/ OUTFILE '/tmp/x'", "OUTFILE"),
    ("SELECT 'into outfile' AS x", None),
    ("SELECT `into` FROM t", None),
])
def test_into_targets_are_found_outside_strings(sql: str, target: str | None) -> None:
    from shared.extract.tokenizer import into_target
    assert into_target(sql, flavor="mysql") == target
