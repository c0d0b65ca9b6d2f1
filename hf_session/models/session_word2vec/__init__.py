"""session_word2vec: skip-gram and CBOW with negative sampling (`SessionWord2VecModel`)."""

from ...registration import register_family
from .configuration_session_word2vec import SessionWord2VecConfig
from .modeling_session_word2vec import SessionWord2VecModel, SessionWord2VecOutput

register_family(SessionWord2VecConfig, {"AutoModel": SessionWord2VecModel})

__all__ = ["SessionWord2VecConfig", "SessionWord2VecModel", "SessionWord2VecOutput"]
