// The spec's example program: top 5 products and the average rating of each.
const top = await external_getTopProducts({ limit: 5 })
const ratings = await Promise.all(
  top.products.map(p => external_getProductRatings({ productId: p.id })),
)
return top.products.map((product, i) => {
  const scores = ratings[i].ratings.map(r => r.score)
  const avg = scores.reduce((sum, s) => sum + s, 0) / scores.length
  return { name: product.name, sales: product.totalSales, averageRating: Math.round(avg * 100) / 100 }
})
