"""What the api answers on success, as documented in its /openapi.json (schemathesis checks the
answers against these in `make test`). Extra fields may appear: clients should ignore them."""
from pydantic import BaseModel, ConfigDict, Field, RootModel


class Product(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "tt0133093", "title": "The Matrix", "description": "A hacker learns that the world is a simulation.",
        "genres": ["Action", "Sci-Fi"], "year": 1999, "metadata": {"rating": 8.7}, "version": 1795686171040385950,
        "created_at": "2026-11-26T09:42:46+00:00", "updated_at": "2026-11-26T09:42:51+00:00",
        "embedding_status": "ready"}]})

    id: str
    title: str
    description: str
    genres: list[str]
    year: int | None
    metadata: dict[str, object]
    version: int
    created_at: str = Field(description="ISO 8601")
    updated_at: str = Field(description="ISO 8601")
    embedding_status: str = Field(description="`pending`, `ready` once it can be recommended, or `failed`")
    embedding_error: str | None = Field(None, description="Why embedding failed (the dead letter's reason) when"
                                              " `embedding_status` is `failed`; else null")


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class GenreCount(BaseModel):
    genre: str
    products: int


class Genres(BaseModel):
    items: list[GenreCount]


class UserSummary(BaseModel):
    id: str
    interactions: int


class Users(BaseModel):
    items: list[UserSummary]


class Interaction(BaseModel):
    product_id: str
    title: str | None = Field(description="null when the product was deleted")
    type: str
    value: float | None
    occurred_at: str


class UserInteractions(BaseModel):
    user_id: str
    items: list[Interaction]


class Reason(BaseModel):
    type: str = Field(description="`similar_to`, `people_also_liked`, `people_watched_next`, `popular`, ...")
    product_id: str | None = None
    title: str | None = None


class Recommendation(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "product": Product.model_config["json_schema_extra"]["examples"][0], "score": 0.8312,
        "reasons": [{"type": "similar_to", "product_id": "tt0234215", "title": "The Matrix Reloaded"}]}]})

    product: Product
    score: float
    reasons: list[Reason]


class Recommendations(BaseModel):
    items: list[Recommendation]
    next_cursor: str | None
    strategy: str
    model: str = Field(description="The embedding model the page was ranked with: the tenant's active model "
                                   "(`recommender reembed` switches it)")


class UserRecommendations(Recommendations):
    user_id: str


class SimilarProducts(Recommendations):
    product_id: str


class Pong(BaseModel):
    message: str


class SpikeProduct(BaseModel):
    id: int | str = Field(description="A number when the id is one")
    name: str
    description: str
    rating: float | None


class SpikeProducts(RootModel[list[SpikeProduct]]):
    pass


class SpikeRecommendation(BaseModel):
    product: SpikeProduct
    similarity: float


class SpikeRecommendations(RootModel[list[SpikeRecommendation]]):
    pass
