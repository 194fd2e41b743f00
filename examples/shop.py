"""The spec's quickstart tools: top products and their ratings (in-memory example data)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from codemode import create_tool


class Product(BaseModel):
    id: str
    name: str
    totalSales: float


class TopProductsInput(BaseModel):
    limit: int


class TopProducts(BaseModel):
    products: list[Product]


class RatingsInput(BaseModel):
    productId: str


class Rating(BaseModel):
    score: float


class Ratings(BaseModel):
    ratings: list[Rating]


PRODUCTS = [
    Product(id="p1", name="Espresso machine", totalSales=1520),
    Product(id="p2", name="Burr grinder", totalSales=1310),
    Product(id="p3", name="Milk frother", totalSales=990),
    Product(id="p4", name="Pour-over kettle", totalSales=870),
    Product(id="p5", name="Coffee scale", totalSales=640),
    Product(id="p6", name="Tamper", totalSales=410),
]

RATINGS = {
    "p1": [5, 4, 5, 4],
    "p2": [4, 4, 3],
    "p3": [3, 4],
    "p4": [5, 5, 4],
    "p5": [4, 3, 4, 4, 5],
    "p6": [2, 3],
}


async def fetch_top_products(input: TopProductsInput) -> TopProducts:
    await asyncio.sleep(0.01)  # stands in for a database query
    ranked = sorted(PRODUCTS, key=lambda p: p.totalSales, reverse=True)
    return TopProducts(products=ranked[: input.limit])


async def fetch_ratings(input: RatingsInput) -> Ratings:
    await asyncio.sleep(0.01)  # stands in for a service call
    return Ratings(ratings=[Rating(score=s) for s in RATINGS.get(input.productId, [])])


get_top_products = create_tool(
    id="getTopProducts",
    description="Get top selling products",
    input_schema=TopProductsInput,
    output_schema=TopProducts,
    execute=fetch_top_products,
)

get_product_ratings = create_tool(
    id="getProductRatings",
    description="Get ratings for a product",
    input_schema=RatingsInput,
    output_schema=Ratings,
    execute=fetch_ratings,
)

tools = {"getTopProducts": get_top_products, "getProductRatings": get_product_ratings}
