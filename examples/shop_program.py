# The spec's example program, in Python: top 5 products and the average rating of each.
# Run it with: codemode run examples/shop_program.py --tools examples/shop.py
import asyncio

top = await external_getTopProducts(limit=5)
ratings = await asyncio.gather(
    *[external_getProductRatings(productId=p["id"]) for p in top["products"]]
)
result = []
for i, product in enumerate(top["products"]):
    scores = [r["score"] for r in ratings[i]["ratings"]]
    average = round(sum(scores) / len(scores), 2)
    result.append(
        {"name": product["name"], "sales": product["totalSales"], "averageRating": average}
    )
result
