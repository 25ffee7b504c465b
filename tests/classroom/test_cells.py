"""Finding solution regions, check calls and answer lines in cell sources (llmnb.classroom.cells)."""
import pytest

from llmnb.classroom.cells import (
    blank_answers,
    check_ids,
    question_cells,
    strip_solutions,
)
from llmnb.errors import LlmnbError


def test_a_solution_region_becomes_nbgraders_stub_at_the_markers_indentation():
    source = ('def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    y = x + x\n    return y\n'
              '    ### END SOLUTION\n\nprint(double)\n')
    assert strip_solutions(source) == (
        'def double(x):\n    """Twice x."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint(double)\n', 1)
    # Two regions, one at the top level and the last line without a newline.
    two = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n\t### BEGIN SOLUTION\n\tc = 3\n\t### END SOLUTION"
    stubbed = "# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\n\t# YOUR CODE HERE\n\traise NotImplementedError()"
    assert strip_solutions(two) == (stubbed, 2)
    assert strip_solutions("Answer:\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n", markdown=True) == (
        "Answer:\nYOUR ANSWER HERE\n", 1)
    assert strip_solutions("x = 1  # no solution here\n") == ("x = 1  # no solution here\n", 0)


@pytest.mark.parametrize("source, says", [
    ("x = 1\n### END SOLUTION\n", "line 2 ends a solution that never began"),
    ("### BEGIN SOLUTION\nx = 1\n", "has no END SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "line 2 begins a solution inside another"),
])
def test_broken_markers_are_errors_that_say_where(source, says):
    with pytest.raises(LlmnbError, match=says) as error:
        strip_solutions(source, where="03_algorithm.ipynb, cell 7")
    assert "03_algorithm.ipynb, cell 7" in str(error.value)


def test_check_ids_are_real_calls_in_order_each_once():
    source = ('check("03.2", answer_2)\n# check("03.9", x)\ns = \'check("03.8", 1)\'\n'
              'llmnb.check.check("03.1", answer_1)\ncheck(exercise_id="03.3", answer=3)\ncheck("03.2", again)\n'
              'if False:\n    check("03.4", answer_4)\nprogress("03")\ncheck(name, 1)\n')
    assert check_ids(source) == ["03.2", "03.1", "03.3", "03.4"]
    # A cell with an IPython magic is still read as Python around it.
    assert check_ids('%load_ext llmnb\n!echo hi\ncheck("01.1", answer_1)') == ["01.1"]
    # Not Python at all: the text is searched instead.
    assert check_ids('x = = 1\ncheck("01.2", answer_2)') == ["01.2"]


def test_question_cells_number_cells_from_one_counting_markdown():
    cells = [{"cell_type": "markdown", "source": 'check("00.9", x)'}, {"cell_type": "code", "source": ["x = 1"]},
             {"cell_type": "code", "source": ['check("00.1", a)\n', 'check("00.2", b)']},
             {"cell_type": "code", "source": 'check("00.1", a)'}]
    assert question_cells(cells) == {"00.1": 3, "00.2": 3}


def test_answers_go_back_to_none_and_keep_their_comments():
    source = ('from llmnb.check import check\n'
              'answer_1 = 3.5  # a number\n'
              'answer_2 = "a # b"   # "a", "b" or "c"\n'
              'answer_3 = ("a long",\n             "é answer")  # a sentence\n'
              'answer_4: float = 0.25\n'
              'answer_5 = None  # already blank\n'
              'x = 1; answer_6 = [1, 2]; y = 2  # two on a line\n'
              'answers = 7\n'
              'check("03.1", answer_1)\n')
    blanked = ('from llmnb.check import check\n'
               'answer_1 = None  # a number\n'
               'answer_2 = None   # "a", "b" or "c"\n'
               'answer_3 = None  # a sentence\n'
               'answer_4: float = None\n'
               'answer_5 = None  # already blank\n'
               'x = 1; answer_6 = None; y = 2  # two on a line\n'
               'answers = 7\n'
               'check("03.1", answer_1)\n')
    assert blank_answers(source) == (blanked, 6)


def test_answers_in_a_cell_with_a_magic_or_a_syntax_error_are_blanked_line_by_line():
    magic = "%load_ext llmnb\nanswer_1 = 'a # b'  # a letter\n    answer_2=5\ncheck('01.1', answer_1)\n"
    blanked = "%load_ext llmnb\nanswer_1 = None  # a letter\n    answer_2=None\ncheck('01.1', answer_1)\n"
    assert blank_answers(magic) == (blanked, 2)
    broken = "answer_1 = 4 +  # unfinished\nanswer_2 == 3\ncheck('01.1', answer_1"
    assert blank_answers(broken) == ("answer_1 = None  # unfinished\nanswer_2 == 3\ncheck('01.1', answer_1", 1)
