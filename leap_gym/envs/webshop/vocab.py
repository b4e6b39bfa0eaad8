"""Word tables for the procedural catalog: WebShop's five categories, product types, attributes and options.

Attribute phrases within a category are chosen so that no two of them fuzzy-match (token-set ratio > 85) and
none is a substring of another or of the filler text: a product lacking an attribute then really fails the
reward's attribute check (tests/envs/webshop/test_catalog.py checks this). Option values inside an axis may
fuzzy-match each other (``x-large`` ~ ``large``, ``pack of 2`` ~ ``pack of 3``), as on the real site; the
generator knows which.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProductType:
    query: str  # the fine product type, the original's ``query`` field
    title: str  # the type's name in titles
    nouns: tuple[str, ...]  # title nouns contributed by the type (for r_type)
    phrases: tuple[str, ...]  # how instructions name it
    breadcrumb: str  # product_category, levels joined by " › "
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    price: tuple[float, float] = (5.0, 100.0)
    materials: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    name: str
    brands: tuple[str, ...]
    attributes: tuple[str, ...]  # shared by every type of the category
    filler: tuple[str, ...]  # description sentences that state no attribute
    types: tuple[ProductType, ...]


COLORS_MAIN = ("black", "white", "navy", "grey", "brown", "red", "green", "beige", "pink", "olive",
               "burgundy", "khaki", "purple", "yellow", "teal", "orange")
SIZES_APPAREL = ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large")
SHOE_SIZES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13")
PACKS = ("pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12")

GENERIC_FILLER = (
    "Backed by a friendly customer support team.",
    "Ships in recyclable packaging.",
    "Makes a thoughtful gift for family and friends.",
    "Our team tests every batch before it leaves the warehouse.",
    "Please check the size chart before ordering.",
    "Colors may vary slightly due to screen settings.",
    "Satisfaction guaranteed or your money back.",
    "Loved by thousands of happy customers.",
    "Perfect for home, office or travel.",
    "Great value for the price.",
)

CATEGORIES: tuple[Category, ...] = (
    Category(
        name="beauty",
        brands=("Lumiere", "Bellacosa", "Vivanne", "Rosetta", "Pureline", "Glowra", "Maison Elle",
                "Novabloom", "Silkora", "Dermacare", "Aurelia", "Fleurette"),
        attributes=("cruelty free", "paraben free", "sensitive skin", "travel size", "natural ingredients"),
        filler=("Apply daily for best results.", "Dermatologist reviewed formula.",
                "A staple of any beauty routine.", "Lightweight texture that absorbs quickly.",
                "Suitable for all ages.",
                "Store in a cool place away from sunlight."),
        types=(
            ProductType("lipstick", "Matte Lipstick", ("lipstick",), ("matte lipstick", "lipstick"),
                        "Beauty & Personal Care › Makeup › Lips › Lipstick",
                        ("long lasting", "highly pigmented", "smudge proof", "moisturizing formula",
                         "shea butter", "transfer resistant", "satin finish", "waterproof"),
                        {"color": ("ruby red", "berry", "coral", "mauve", "nude", "plum", "cherry", "rose",
                                   "mocha", "fuchsia",
                                   "peach"), "size": ("pack of 1", "pack of 2", "pack of 3")},
                        (4.0, 30.0), ("wax",)),
            ProductType("shampoo", "Shampoo", ("shampoo",), ("shampoo", "bottle of shampoo", "hair shampoo"),
                        "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
                        ("sulfate free", "color safe", "dandruff control", "tea tree", "argan oil",
                         "hair growth", "dry scalp", "volumizing"),
                        {"size": ("8.4 fl oz", "16.9 fl oz", "33.8 fl oz", "2 count"),
                         "scent": ("lavender", "coconut", "eucalyptus", "citrus", "unscented", "vanilla")},
                        (6.0, 45.0), ("bottle",)),
            ProductType("face serum", "Face Serum", ("face", "serum"),
                        ("face serum", "facial serum", "serum"),
                        "Beauty & Personal Care › Skin Care › Face › Serums",
                        ("hyaluronic acid", "vitamin c", "anti aging", "fine lines", "dark spots",
                         "oil control", "fragrance free", "retinol"),
                        {"size": ("1 fl oz", "1.7 fl oz", "3.4 fl oz")}, (9.0, 80.0), ("dropper",)),
            ProductType("nail polish", "Nail Polish", ("nail", "polish"), ("nail polish", "nail lacquer"),
                        "Beauty & Personal Care › Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
                        ("quick dry", "chip resistant", "non toxic", "high shine", "gel effect",
                         "vegan formula"),
                        {"color": ("ruby red", "coral", "lilac", "navy", "mint", "gold glitter", "black",
                                   "nude"),
                         "item package quantity": PACKS},
                        (3.0, 25.0), ("brush",)),
        ),
    ),
    Category(
        name="food",
        brands=("Harvest Hill", "Prairie Gold", "Wildgrain", "Oak & Ember", "Sunnyfield", "Mesa Verde",
                "Coastal Kitchen", "Nutrafarm", "Happy Acre", "Old Mill", "Bluestem", "Kettle Creek"),
        attributes=("gluten free", "non gmo", "usda organic", "kosher certified", "individually wrapped"),
        filler=("Packed fresh in the United States.", "Great for lunch boxes and road trips.",
                "Keep sealed after opening.", "A pantry favorite for busy families.",
                "Enjoy straight from the bag or share with friends.", "Sourced from trusted growers."),
        types=(
            ProductType("beef jerky", "Beef Jerky", ("beef", "jerky"),
                        ("beef jerky", "pack of beef jerky", "jerky"),
                        "Grocery & Gourmet Food › Meat & Seafood › Jerky & Dried Meats › Beef Jerky",
                        ("high protein", "low sugar", "grass fed", "keto friendly", "zero carbs", "msg free"),
                        {"flavor name": ("teriyaki", "original", "peppered", "sweet & spicy",
                                         "hickory smoked", "sriracha"),
                         "size": ("2.85 ounce (pack of 8)", "10 ounce", "1 pound", "3.25 ounce (pack of 4)")},
                        (6.0, 60.0), ("strip",)),
            ProductType("coffee", "Ground Coffee", ("coffee",), ("ground coffee", "bag of coffee", "coffee"),
                        "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee",
                        ("medium roast", "fair trade", "single origin", "low acid", "arabica beans",
                         "bold flavor"),
                        {"flavor name": ("vanilla", "hazelnut", "caramel", "breakfast blend", "mocha",
                                         "pumpkin spice"),
                         "size": ("12 ounce", "2 pound", "24 ounce (pack of 3)")},
                        (7.0, 45.0), ("bag",)),
            ProductType("snack bars", "Snack Bars", ("snack", "bars"), ("snack bars", "box of snack bars"),
                        "Grocery & Gourmet Food › Snack Foods › Bars › Nutrition Bars",
                        ("low calorie", "plant based", "high fiber", "peanut butter", "dairy free",
                         "whole grain"),
                        {"flavor name": ("chocolate chip", "blueberry", "almond", "cinnamon", "lemon",
                                         "cookie dough"),
                         "size": ("12 count", "6 count (pack of 2)", "24 count")},
                        (8.0, 40.0), ("box",)),
            ProductType("herbal tea", "Herbal Tea", ("herbal", "tea"),
                        ("herbal tea", "box of herbal tea", "tea"),
                        "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Tea › Herbal",
                        ("caffeine free", "immune support", "loose leaf", "sleep aid", "digestive health",
                         "compostable bags"),
                        {"flavor name": ("chamomile", "peppermint", "ginger", "hibiscus", "rooibos"),
                         "size": ("20 count (pack of 6)", "100 count", "40 count")},
                        (4.0, 35.0), ("sachet",)),
        ),
    ),
    Category(
        name="fashion",
        brands=("Trailmax", "Urbanfit", "Northpeak", "Cottonway", "Denimco", "Stridewell", "Harbor & Pine",
                "Velocita", "Ridgeline", "Amberlane", "Kestrel", "Mayfair"),
        attributes=("machine wash", "imported fabric", "easy care"),
        filler=("Designed for everyday comfort.", "A wardrobe essential for every season.",
                "True to size for most customers.", "Pairs well with your favorite outfits.",
                "Style meets function in this piece.", "Crafted with attention to detail."),
        types=(
            ProductType("men's hiking boots", "Men's Hiking Boot", ("hiking", "boot"),
                        ("pair of men's hiking boots", "men's hiking boots", "hiking boots for men"),
                        "Clothing, Shoes & Jewelry › Men › Shoes › Outdoor › Hiking & Trekking › Hiking "
                        "Boots",
                        ("rubber sole", "ankle support", "slip resistant", "lace up", "memory foam",
                         "steel toe", "breathable mesh", "waterproof"),
                        {"color": ("black", "brown", "grey", "tan", "olive", "khaki"), "size": SHOE_SIZES},
                        (35.0, 180.0), ("leather",)),
            ProductType("women's t-shirt", "Women's T-Shirt", ("shirt",),
                        ("women's t-shirt", "t-shirt for women", "tee shirt for women"),
                        "Clothing, Shoes & Jewelry › Women › Clothing › Tops, Tees & Blouses › T-Shirts",
                        ("short sleeve", "relaxed fit", "crew neck", "moisture wicking", "tie dye", "v neck",
                         "tagless label"),
                        {"color": COLORS_MAIN, "size": SIZES_APPAREL},
                        (8.0, 40.0), ("cotton",)),
            ProductType("men's jeans", "Men's Jeans", ("jeans",),
                        ("pair of men's jeans", "men's jeans", "jeans for men"),
                        "Clothing, Shoes & Jewelry › Men › Clothing › Jeans",
                        ("slim fit", "button closure", "stretch denim", "straight leg", "five pocket",
                         "distressed look"),
                        {"color": ("dark wash", "light wash", "black", "indigo", "stonewash"),
                         "size": ("30w x 30l", "32w x 32l", "34w x 30l", "34w x 32l", "36w x 34l",
                                  "38w x 30l"),
                         "fit type": ("regular", "big & tall")},
                        (20.0, 90.0), ("denim",)),
            ProductType("women's running shoes", "Women's Running Shoe", ("running", "shoe"),
                        ("pair of women's running shoes", "women's running shoes", "running shoes for women"),
                        "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running",
                        ("arch support", "knit upper", "shock absorbing", "non slip", "cushioned insole",
                         "wide toe box"),
                        {"color": ("white", "black", "pink", "grey", "navy", "purple", "teal"),
                         "size": SHOE_SIZES},
                        (25.0, 130.0), ("mesh",)),
        ),
    ),
    Category(
        name="furniture",
        brands=("Homestead", "Oakridge", "Nordhaus", "Cozynest", "Willowbrook", "Atelier Home", "Birchwood",
                "Loftline", "Maplecrest", "Casa Bella", "Sparrow & Co", "Greyson"),
        attributes=("easy assemble", "space saving", "living room", "heavy duty"),
        filler=("Assembly instructions are included in the box.", "Wipe clean with a damp cloth.",
                "Adds a warm touch to any room.", "Built to last for years of daily use.",
                "Ships flat packed to your door.", "A smart upgrade for small apartments."),
        types=(
            ProductType("ottoman bench", "Storage Ottoman Bench", ("ottoman", "bench"),
                        ("ottoman bench", "storage ottoman", "ottoman"),
                        "Home & Kitchen › Furniture › Living Room Furniture › Ottomans",
                        ("storage space", "faux leather", "tufted design", "foldable frame", "padded seat",
                         "velvet fabric"),
                        {"color": ("black", "grey", "beige", "navy", "brown", "green"),
                         "size": ("30x15x15in", "43x15x15in", "small", "large")},
                        (25.0, 160.0), ("wood",)),
            ProductType("bookshelf", "Bookshelf", ("bookshelf",), ("bookshelf", "book shelf", "bookcase"),
                        "Home & Kitchen › Furniture › Home Office Furniture › Bookcases",
                        ("solid wood", "wall mounted", "industrial style", "open shelves", "anti tip",
                         "metal frame"),
                        {"color": ("walnut", "white", "black", "oak", "espresso"),
                         "size": ("3 tier", "4 tier", "5 tier")},
                        (30.0, 250.0), ("shelf",)),
            ProductType("comforter set", "Comforter Set", ("comforter", "set"),
                        ("comforter set", "bedding comforter set", "comforter"),
                        "Home & Kitchen › Bedding › Comforters & Sets › Comforter Sets",
                        ("all season", "down alternative", "hypoallergenic", "ultra soft", "machine washable",
                         "corner loops"),
                        {"color": ("white", "grey", "navy", "sage green", "blush pink", "beige"),
                         "size": ("twin", "full", "queen", "king", "california king")},
                        (25.0, 140.0), ("microfiber",)),
            ProductType("office chair", "Office Chair", ("office", "chair"), ("office chair", "desk chair"),
                        "Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs › Desk "
                        "Chairs",
                        ("lumbar support", "adjustable height", "ergonomic design", "swivel base",
                         "high back", "flip up arms"),
                        {"color": ("black", "white", "grey", "blue", "pink")}, (40.0, 300.0), ("caster",)),
        ),
    ),
    Category(
        name="electronics",
        brands=("Voltix", "Sonique", "Auralink", "Pixelon", "Corewave", "Zentro", "Brightlabs", "Nexio",
                "Quantix", "Echovia", "Lumatek", "Orbix"),
        attributes=("plug and play", "usb powered", "warranty included", "compact size"),
        filler=("Works with most modern devices.", "Tested for reliability and safety.",
                "Includes a quick start guide.", "Our support team is here to help.",
                "A handy addition to any desk setup.", "Stylish look that fits any setup."),
        types=(
            ProductType("usb microphone", "USB Microphone", ("usb", "microphone"),
                        ("usb microphone", "microphone for streaming", "computer microphone"),
                        "Electronics › Computers & Accessories › Computer Accessories & Peripherals › Audio "
                        "› Microphones",
                        ("noise cancelling", "cardioid pattern", "mute button", "gain control",
                         "tripod stand", "headphone jack"),
                        {"color": ("black", "white", "pink", "blue"),
                         "style": ("standard", "boom arm", "rgb lighting")},
                        (20.0, 150.0), ("metal",)),
            ProductType("hdmi cable", "HDMI Cable", ("hdmi", "cable"), ("hdmi cable", "hdmi cord"),
                        "Electronics › Television & Video › Accessories › Cables › HDMI Cables",
                        ("high speed", "4k resolution", "gold plated", "braided nylon", "ethernet channel",
                         "right angle"),
                        {"length": ("3 ft", "6 ft", "10 ft", "15 ft", "25 ft"), "size": PACKS},
                        (5.0, 35.0), ("connector",)),
            ProductType("wireless earbuds", "Wireless Earbuds", ("earbuds",),
                        ("wireless earbuds", "bluetooth earbuds", "earbuds"),
                        "Electronics › Headphones, Earbuds & Accessories › Earbuds",
                        ("fast charging", "water resistant", "touch control", "long battery", "built in mic",
                         "deep bass"),
                        {"color": ("black", "white", "navy", "rose gold", "green")}, (15.0, 200.0),
                        ("case",)),
            ProductType("phone case", "Phone Case", ("phone", "case"), ("phone case", "case for my phone"),
                        "Electronics › Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
                        ("shockproof", "wireless charging", "slim design", "raised edges", "kickstand",
                         "clear back"),
                        {"color": ("black", "clear", "blue", "purple", "red", "pink", "green"),
                         "size": ("iphone 13", "iphone 14", "iphone 15 pro", "galaxy s23")},
                        (6.0, 40.0), ("silicone",)),
        ),
    ),
)

TYPES: tuple[tuple[int, int], ...] = tuple((c, t) for c, cat in enumerate(CATEGORIES)
                                           for t in range(len(cat.types)))

ATTRIBUTE_SENTENCES = (
    "{A} for everyday use.", "Features {a}.", "Designed with {a} in mind.", "Customers love the {a}.",
    "Now with {a}.", "Made to be {a} from the start.", "Enjoy the benefit of {a}.",
)
INTRO_SENTENCES = (
    "The {brand} {type} is made for people who want quality.", "Meet the {brand} {type}.",
    "Discover the {type} from {brand}.", "{brand} brings you a {type} you will reach for again and again.",
)
BULLET_TAILS = ("for daily use", "you can rely on", "that lasts", "made simple", "at a great value",
                "for peace of mind", "done right")
OPENINGS = (("i am looking for", 27.6), ("im looking for", 15.1), ("i would like", 12.3), ("i need", 8.2),
            ("i want", 11.0), ("find me", 4.0), ("i'm searching for", 4.0), ("can you get me", 3.0),
            ("show me", 3.0), ("i am searching for", 3.0))

# Product lines within a type: shown in titles and named in instructions, so queries can narrow the type down.
QUALIFIERS: dict[str, tuple[str, ...]] = {
    "lipstick": ("liquid", "cream", "sheer", "metallic", "velvet", "glossy"),
    "shampoo": ("clarifying", "herbal", "salon", "keratin", "charcoal", "baby"),
    "face serum": ("brightening", "firming", "hydrating", "overnight", "peptide", "botanical"),
    "nail polish": ("matte", "glitter", "pastel", "neon", "chrome", "french"),
    "beef jerky": ("thick cut", "tender", "smoked", "craft", "bbq", "ranch"),
    "coffee": ("espresso", "colombian", "sumatra", "decaf", "house blend", "cold brew"),
    "snack bars": ("protein", "granola", "fruit", "oat", "nut", "crispy"),
    "herbal tea": ("wellness", "detox", "relaxing", "morning", "bedtime", "citrus"),
    "men's hiking boots": ("mid", "low", "winter", "trail", "tactical", "backpacking"),
    "women's t-shirt": ("graphic", "basic", "oversized", "workout", "pocket", "striped"),
    "men's jeans": ("skinny", "bootcut", "relaxed", "athletic", "carpenter", "tapered"),
    "women's running shoes": ("trail", "road", "racing", "walking", "tennis", "gym"),
    "ottoman bench": ("round", "rectangular", "entryway", "bedroom", "cube", "footstool"),
    "bookshelf": ("ladder", "corner", "cube", "bamboo", "rustic", "narrow"),
    "comforter set": ("quilted", "farmhouse", "boho", "floral", "plaid", "luxury"),
    "office chair": ("mesh", "leather", "gaming", "drafting", "executive", "task"),
    "usb microphone": ("condenser", "podcast", "gaming", "studio", "desktop", "streaming"),
    "hdmi cable": ("premium", "ultra", "slim", "flat", "coiled", "active"),
    "wireless earbuds": ("sport", "open ear", "mini", "gaming", "hybrid", "true"),
    "phone case": ("wallet", "rugged", "glitter", "leather", "magnetic", "folio"),
}
